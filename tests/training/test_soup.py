"""Weight soups: the mean of runs' weights, kept greedily on validation, and `cxr soup` writes a package
that serves, refusing runs that were held out differently or are not finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="soups need the train extra (PyTorch)")

from cxr_pneumonia.errors import DataError  # noqa: E402
from cxr_pneumonia.package import ModelPackage  # noqa: E402
from cxr_pneumonia.training.soup import average_weights, greedy_soup  # noqa: E402


def test_average_weights_means_floats_and_keeps_counts() -> None:
    a = {"w": torch.tensor([1.0, 2.0]), "bn.num_batches_tracked": torch.tensor(5)}
    b = {"w": torch.tensor([3.0, 6.0]), "bn.num_batches_tracked": torch.tensor(9)}
    mean = average_weights([a, b])
    assert torch.equal(mean["w"], torch.tensor([2.0, 4.0]))
    assert mean["bn.num_batches_tracked"].item() == 5 and mean["bn.num_batches_tracked"].dtype == torch.int64


def test_weights_of_another_architecture_are_refused() -> None:
    with pytest.raises(DataError, match="not one architecture"):
        average_weights([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}])
    with pytest.raises(DataError, match="not one architecture"):
        average_weights([{"w": torch.zeros(2)}, {"v": torch.zeros(2)}])


def test_greedy_soup_keeps_only_what_lowers_the_score() -> None:
    """Score: distance of the mean weight to 0. Ingredients 1 and -1 cancel out; 5 would spoil the soup."""
    ingredients = [{"w": torch.tensor([value])} for value in (5.0, 1.0, -1.2)]

    def score(weights: dict[str, torch.Tensor]) -> float:
        return abs(float(weights["w"][0]))

    kept, own, trail = greedy_soup(ingredients, score)
    assert own == [5.0, 1.0, pytest.approx(1.2)]
    assert kept == [1, 2]  # tried in the order 1 (own 1.0), 2 (own 1.2), 0 (own 5.0)
    assert trail == [1.0, pytest.approx(0.1), pytest.approx(1.6)]  # (1 - 1.2 + 5) / 3


def test_cli_soup_writes_a_package_that_serves(
    tiny_dataset_csv: Path, members: list[Path], kermany: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from cxr_pneumonia.cli import app
    from cxr_pneumonia.inference import Predictor

    runs = [m.parent for m in members]
    out = tmp_path / "soup"
    args = ["soup", "--run", str(runs[0]), "--run", str(runs[1]), "--data", str(tiny_dataset_csv)]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--version", "9.1.0"])
    assert result.exit_code == 0, result.output
    package = ModelPackage.open(out)
    manifest = package.manifest
    assert manifest.version == "9.1.0" and manifest.feature_channels == 1280
    record = manifest.training["soup"]
    assert {i["package_digest"] for i in record["ingredients"]} == {
        ModelPackage.open(m).manifest.digest for m in members
    }
    assert 1 <= record["kept"] == sum(i["kept"] for i in record["ingredients"])
    assert record["ingredients"][0]["kept"]  # the best ingredient starts the soup
    assert record["scaled_val_nll"] <= record["ingredients"][0]["own_scaled_val_nll"]
    assert manifest.training["onnx_parity_max_abs_diff"] < 1e-3
    assert manifest.training["split_counts"] == json.loads(
        json.dumps(ModelPackage.open(members[0]).manifest.training["split_counts"])
    )
    assert any(key.endswith("/shift-holdout") for key in manifest.evaluations)
    assert "cxr soup --run" in (out / "MODEL_CARD.md").read_text()
    image = sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[0]
    prediction = Predictor(package).predict(image, heatmap=True)
    assert prediction.model.version == "9.1.0" and prediction.heatmap is not None


def test_a_soup_of_one_run_with_itself_is_that_run(
    tiny_dataset_csv: Path, members: list[Path], tmp_path: Path
) -> None:
    """Averaging identical weights changes nothing: the soup serves the run's own logits."""
    import numpy as np

    from cxr_pneumonia.inference.session import open_session
    from cxr_pneumonia.training.soup import build_soup

    run = members[0].parent
    build_soup([run, run], tiny_dataset_csv, tmp_path / "same", version="9.1.1")
    image = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    mine = open_session(tmp_path / "same" / "model.onnx").run(["logits"], {"image": image})[0]
    theirs = open_session(members[0] / "model.onnx").run(["logits"], {"image": image})[0]
    assert np.max(np.abs(mine - theirs)) < 1e-4


def test_runs_held_out_differently_or_unfinished_are_refused(
    tiny_dataset_csv: Path, tiny_run, members: list[Path], tmp_path: Path
) -> None:
    """tiny_run held out a random share of patients, the members the earliest ones."""
    from cxr_pneumonia.training.soup import build_soup

    with pytest.raises(DataError, match="another hold-out"):
        build_soup([members[0].parent, tiny_run.out_dir], tiny_dataset_csv, tmp_path / "s", version="1")
    assert not (tmp_path / "s").exists()  # refused before anything was written
    with pytest.raises(DataError, match="not a finished training run"):
        build_soup([members[0].parent, tmp_path], tiny_dataset_csv, tmp_path / "t", version="1")


def test_a_config_for_other_images_is_refused(
    tiny_dataset_csv: Path, members: list[Path], tmp_path: Path
) -> None:
    """--config decides which images are scored after the soup is made: a shift hold-out of another
    size would score images the ingredients trained on as if they were held out; another input size
    would describe a network the soup is not."""
    from dataclasses import replace

    from cxr_pneumonia.training.config import TrainConfig
    from cxr_pneumonia.training.soup import build_soup

    runs = [m.parent for m in members]
    cfg = TrainConfig.from_yaml(runs[0] / "config.yaml")
    other = tmp_path / "other.yaml"
    replace(cfg, shift_holdout=0.4).write_yaml(other)
    with pytest.raises(DataError, match="another shift hold-out"):
        build_soup(runs, tiny_dataset_csv, tmp_path / "s", version="1", config=other)
    assert not (tmp_path / "s").exists()
    replace(cfg, image_size=192).write_yaml(other)
    with pytest.raises(DataError, match="differ in image size"):
        build_soup(runs, tiny_dataset_csv, tmp_path / "s", version="1", config=other)
