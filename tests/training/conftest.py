"""A real (tiny) training run shared by the training tests: a few dozen Kermany images, one epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
from kermany_subset import write_dataset_csv


@pytest.fixture(scope="session")
def tiny_dataset_csv(kermany: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset_csv(kermany, 16, tmp_path_factory.mktemp("tiny") / "tiny.csv")


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset_csv: Path, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("torch", reason="training needs the train extra (PyTorch)")
    from rich.console import Console

    from cxr_pneumonia.training.config import TrainConfig
    from cxr_pneumonia.training.run import train

    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(epochs=1, batch_size=16, val_fraction=0.25, seed=7)
    return train(tiny_dataset_csv, out / "tiny", cfg, console=Console(quiet=True))
