"""A short real training run produces a package that loads, verifies and predicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cxr_pneumonia.data.catalog import read_manifest_csv
from cxr_pneumonia.data.splits import assert_patient_disjoint
from cxr_pneumonia.errors import CXRError, ModelError
from cxr_pneumonia.inference import Prediction, Predictor
from cxr_pneumonia.package import ModelPackage


def test_run_writes_a_complete_package(tiny_run) -> None:
    package = ModelPackage.open(tiny_run.package_dir)
    manifest = package.manifest
    assert manifest.classes == ("normal", "bacterial", "viral")
    assert manifest.preprocess.size == 224
    assert manifest.calibration.temperature > 0
    assert 0.0 <= manifest.calibration.threshold <= 1.0
    assert manifest.training["onnx_parity_max_abs_diff"] < 1e-4
    assert (tiny_run.package_dir / "MODEL_CARD.md").read_text().startswith("# Model card")
    assert (tiny_run.out_dir / "train.log").read_text().count("epoch 1") >= 1
    assert (tiny_run.out_dir / "checkpoints" / "last.pt").is_file()


def test_validation_is_split_by_patient_and_never_reads_test(tiny_run) -> None:
    manifest = read_manifest_csv(tiny_run.out_dir / "manifest.csv")
    split = json.loads((tiny_run.out_dir / "split.json").read_text())
    by_path = {r.path: r for r in manifest.rows}
    train = [by_path[p] for p in split["train"]]
    val = [by_path[p] for p in split["val"]]
    assert train and val
    assert_patient_disjoint(train, val)
    assert all(r.split != "test" for r in train + val)


def test_package_predicts_real_images(tiny_run, kermany: Path) -> None:
    predictor = Predictor.from_package(tiny_run.package_dir)
    images = sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[:4]
    results = predictor.predict_batch(images)
    assert len(results) == 4
    for result in results:
        # the tiny model's OOD gate may refuse; anything else must be a real prediction
        assert isinstance(result, Prediction | CXRError)
        if isinstance(result, Prediction):
            assert 0.0 <= result.p_pneumonia <= 1.0
            assert abs(result.p_bacterial + result.p_viral - result.p_pneumonia) < 1e-9
            assert result.heatmap is not None and result.heatmap.shape == (224, 224)


def test_tampered_package_is_refused(tiny_run, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "pkg"
    shutil.copytree(tiny_run.package_dir, copy)
    onnx = copy / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[-10] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        Predictor.from_package(copy)


def test_resume_continues_from_the_checkpoint(tiny_dataset_csv: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from rich.console import Console

    from cxr_pneumonia.training.config import TrainConfig
    from cxr_pneumonia.training.run import train

    cfg = TrainConfig(epochs=1, batch_size=16, val_fraction=0.25, seed=7, patience=5)
    out = tmp_path / "run"
    train(tiny_dataset_csv, out, cfg, console=Console(quiet=True))
    result = train(tiny_dataset_csv, out, replace(cfg, epochs=2), resume=True, console=Console(quiet=True))
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert result.best_epoch in (1, 2)
    assert np.isfinite(history[-1]["train_loss"])
