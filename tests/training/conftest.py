"""Real (tiny) training runs shared by the training tests: a few dozen Kermany images, one epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_dataset import write_tiny_csv


@pytest.fixture(scope="session")
def tiny_dataset_csv(kermany: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV over real Kermany train images (absolute paths; nothing copied)."""
    return write_tiny_csv(kermany, tmp_path_factory.mktemp("tiny") / "tiny.csv")


@pytest.fixture(scope="session")
def tune_dataset_csv(kermany: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough images (40 per class) for a validation AUROC that tells a working trial from a broken one."""
    return write_tiny_csv(kermany, tmp_path_factory.mktemp("tune") / "tune.csv", per_class=40)


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset_csv: Path, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("torch", reason="training needs the train extra (PyTorch)")
    from rich.console import Console

    from cxr_pneumonia.training.config import TrainConfig
    from cxr_pneumonia.training.run import train

    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(epochs=1, batch_size=16, val_fraction=0.25, seed=7)
    return train(tiny_dataset_csv, out / "tiny", cfg, console=Console(quiet=True))


@pytest.fixture(scope="session")
def members(tiny_dataset_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two tiny runs on the same data, the same (earliest-patients) validation and the same shift
    hold-out (the latest patients of the rest), with two seeds."""
    from rich.console import Console

    from cxr_pneumonia.training.config import TrainConfig
    from cxr_pneumonia.training.run import train

    out = tmp_path_factory.mktemp("members")
    made = []
    for seed in (7, 8):
        cfg = TrainConfig(
            epochs=1, batch_size=16, val_fraction=0.25, val_strategy="earliest", shift_holdout=0.2, seed=seed
        )
        made.append(
            train(tiny_dataset_csv, out / f"seed{seed}", cfg, console=Console(quiet=True)).package_dir
        )
    return made
