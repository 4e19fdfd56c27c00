"""A package trained from a DVC-tracked dataset names its DVC md5 and the data's git revision in
model.json, its card, its MLflow run and `cxr models show`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cxr_pneumonia.cli import app
from cxr_pneumonia.package import ModelPackage


def test_a_model_trained_on_dvc_data_names_its_data_version(dvc_repo, tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="training needs the train extra (PyTorch)")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"image_size": 64, "batch_size": 8, "val_fraction": 0.34, "seed": 7}))
    out = tmp_path / "run"
    runner = CliRunner()
    command = ["train", "--data", str(dvc_repo.dataset), "--out", str(out), "--config", str(config)]
    trained = runner.invoke(app, [*command, "--epochs", "1", "--max-images", "12"])
    assert trained.exit_code == 0, trained.output

    package = ModelPackage.open(out / "package")
    training = package.manifest.training
    md5, head = dvc_repo.dvc_md5(), dvc_repo.head()
    assert training["dataset_dvc"]["md5"] == md5
    assert training["dataset_dvc"]["git_revision"] == head and training["dataset_dvc"]["git_dirty"] is False
    record = json.loads((out / "dataset.json").read_text())
    assert record == {"dataset_version": training["dataset_version"], "dvc": training["dataset_dvc"]}
    assert f"md5 `{md5}`" in package.card_text() and head in package.card_text()

    registered = runner.invoke(app, ["models", "register", str(out / "package"), "--name", "dvc-lineage"])
    assert registered.exit_code == 0, registered.output
    shown = runner.invoke(app, ["models", "show", "dvc-lineage", "1", "--json"])
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.stdout)
    assert info["dataset_dvc_md5"] == md5 and info["dataset_git_revision"] == head
    assert info["dataset_version"] == training["dataset_version"]
