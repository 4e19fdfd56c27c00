"""A real (tiny) training run shared by the training tests: a few dozen Kermany images, one epoch."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest


def _pick(folder: Path, pattern: str, n: int) -> list[Path]:
    return sorted(folder.glob(pattern))[:n]


@pytest.fixture(scope="session")
def tiny_dataset_csv(kermany: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV over real Kermany train images (absolute paths; nothing copied)."""
    train = kermany / "train"
    rows = [(p, "normal") for p in _pick(train / "NORMAL", "IM-*.jpeg", 16)]
    rows += [(p, "pneumonia") for p in _pick(train / "PNEUMONIA", "*_bacteria_*.jpeg", 16)]
    rows += [(p, "pneumonia") for p in _pick(train / "PNEUMONIA", "*_virus_*.jpeg", 16)]
    path = tmp_path_factory.mktemp("tiny") / "tiny.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        for image, label in rows:
            writer.writerow([str(image.resolve()), label, "train"])
    return path


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset_csv: Path, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("torch", reason="training needs the train extra (PyTorch)")
    from rich.console import Console

    from cxr_pneumonia.training.config import TrainConfig
    from cxr_pneumonia.training.run import train

    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(epochs=1, batch_size=16, val_fraction=0.25, seed=7)
    return train(tiny_dataset_csv, out / "tiny", cfg, console=Console(quiet=True))
