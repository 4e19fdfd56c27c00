"""A real (tiny) training run shared by the training tests: a few dozen Kermany images, one epoch."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest


def _pick(folder: Path, pattern: str, n: int) -> list[Path]:
    return sorted(folder.glob(pattern))[:n]


def write_kermany_csv(kermany: Path, per_class: int, path: Path) -> Path:
    """A CSV over real Kermany train images, ``per_class`` each of normal, bacterial and viral
    (absolute paths; nothing copied)."""
    train = kermany / "train"
    rows = [(p, "normal") for p in _pick(train / "NORMAL", "IM-*.jpeg", per_class)]
    rows += [(p, "pneumonia") for p in _pick(train / "PNEUMONIA", "*_bacteria_*.jpeg", per_class)]
    rows += [(p, "pneumonia") for p in _pick(train / "PNEUMONIA", "*_virus_*.jpeg", per_class)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        for image, label in rows:
            writer.writerow([str(image.resolve()), label, "train"])
    return path


@pytest.fixture(scope="session")
def tiny_dataset_csv(kermany: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kermany_csv(kermany, 16, tmp_path_factory.mktemp("tiny") / "tiny.csv")


@pytest.fixture(scope="session")
def tune_dataset_csv(kermany: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough images (40 per class) for a validation AUROC that tells a working trial from a broken one."""
    return write_kermany_csv(kermany, 40, tmp_path_factory.mktemp("tune") / "tune.csv")


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset_csv: Path, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("torch", reason="training needs the train extra (PyTorch)")
    from rich.console import Console

    from cxr_pneumonia.training.config import TrainConfig
    from cxr_pneumonia.training.run import train

    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(epochs=1, batch_size=16, val_fraction=0.25, seed=7)
    return train(tiny_dataset_csv, out / "tiny", cfg, console=Console(quiet=True))
