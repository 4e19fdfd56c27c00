"""Ensembles: the composed graph equals its members averaged, and `cxr ensemble` writes a package that
serves, fitted on the members' shared hold-out and refusing members that were validated differently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cxr_pneumonia.errors import DataError, ModelError
from cxr_pneumonia.imaging import load
from cxr_pneumonia.imaging.preprocess import to_model_input
from cxr_pneumonia.inference.session import head_weights, open_session
from cxr_pneumonia.models.compose import Member, compose_ensemble
from cxr_pneumonia.package import ONNX_NAME, ModelPackage, OODReference

ROOT = Path(__file__).resolve().parents[2]


def _batch(kermany: Path, spec) -> np.ndarray:
    paths = sorted((kermany / "train" / "NORMAL").glob("IM-*.jpeg"))[:2]
    paths += sorted((kermany / "train" / "PNEUMONIA").glob("*_virus_*.jpeg"))[:2]
    return np.stack([to_model_input(load(p), spec) for p in paths])


def test_composed_graph_is_the_mean_of_scaled_member_logits(
    kermany: Path, bundled_model_path: Path, tmp_path: Path
) -> None:
    """Two real packages (the format-1 1.0.0 and the bundled one): logits, features and the head."""
    members = [ModelPackage.open(ROOT / "models" / "cxr-effnet-lite0"), ModelPackage.open(bundled_model_path)]
    out = tmp_path / "ensemble.onnx"
    composed = compose_ensemble(
        [Member(p.path / ONNX_NAME, p.manifest.calibration.temperature) for p in members], out
    )
    channels = (1280, members[1].manifest.feature_channels)
    assert composed.channels == channels and composed.feature_size == (7, 7)
    batch = _batch(kermany, members[1].manifest.preprocess)
    runs = [open_session(p.path / ONNX_NAME).run(["logits", "features"], {"image": batch}) for p in members]
    logits, features = open_session(out).run(["logits", "features"], {"image": batch})
    expected = np.mean(
        [r[0] / p.manifest.calibration.temperature for r, p in zip(runs, members, strict=True)], axis=0
    )
    assert np.max(np.abs(logits - expected)) < 1e-4
    assert np.array_equal(features, np.concatenate([r[1] for r in runs], axis=1))
    weight, bias = head_weights(out, sum(channels))  # one Gemm: the Predictor's exact Grad-CAM still reads it
    recomputed = features.mean(axis=(2, 3)) @ weight.T + bias
    assert np.max(np.abs(recomputed - logits)) < 1e-3


def test_one_member_is_not_an_ensemble(bundled_model_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="at least two"):
        compose_ensemble([Member(bundled_model_path / ONNX_NAME, 1.0)], tmp_path / "e.onnx")


def test_block_diagonal_reference_sums_member_distances(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(3, 3))
    pa, pb = a @ a.T + np.eye(4), b @ b.T + np.eye(3)
    mean = rng.normal(size=7)
    x = rng.normal(size=(5, 7))
    blocks = OODReference(mean=mean, precision=(pa, pb))
    da = OODReference(mean=mean[:4], precision=pa).distance(x[:, :4])
    db = OODReference(mean=mean[4:], precision=pb).distance(x[:, 4:])
    assert np.allclose(blocks.distance(x), np.sqrt(da**2 + db**2))
    blocks.save(tmp_path / "ood.npz")
    loaded = OODReference.load(tmp_path / "ood.npz")
    assert len(loaded.blocks) == 2
    assert np.allclose(loaded.distance(x), blocks.distance(x), rtol=1e-5)
    with pytest.raises(ModelError, match="covers 7 features"):
        blocks.distance(x[:, :6])


def test_cli_ensemble_writes_a_package_that_serves(
    tiny_dataset_csv: Path, members: list[Path], kermany: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from cxr_pneumonia.cli import app
    from cxr_pneumonia.inference import Predictor

    out = tmp_path / "ensemble"
    args = ["ensemble", "--member", str(members[0]), "--member", str(members[1])]
    result = CliRunner().invoke(
        app, [*args, "--data", str(tiny_dataset_csv), "--out", str(out), "--version", "9.0.0"]
    )
    assert result.exit_code == 0, result.output
    package = ModelPackage.open(out)
    manifest = package.manifest
    assert manifest.version == "9.0.0" and manifest.feature_channels == 2560
    record = manifest.training["ensemble"]
    assert [m["digest"] for m in record["members"]] == [ModelPackage.open(m).manifest.digest for m in members]
    assert record["composition_max_abs_diff"] < 1e-4
    assert len(package.ood.blocks) == 2
    assert manifest.training["split_counts"] == json.loads(
        json.dumps(ModelPackage.open(members[0]).manifest.training["split_counts"])
    )
    assert "cxr ensemble --member" in (out / "MODEL_CARD.md").read_text()
    image = sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[0]
    prediction = Predictor(package).predict(image, heatmap=True)
    assert prediction.model.version == "9.0.0"
    assert 0.0 <= prediction.p_pneumonia <= 1.0
    assert (
        prediction.heatmap is not None
        and prediction.heatmap_reference == manifest.calibration.heatmap_reference
    )


def test_members_validated_on_another_hold_out_are_refused(
    tiny_dataset_csv: Path, tiny_run, members: list[Path], tmp_path: Path
) -> None:
    """tiny_run held out a random share of patients, the members the earliest ones."""
    from cxr_pneumonia.training.ensemble import build_ensemble

    with pytest.raises(DataError, match="another hold-out"):
        build_ensemble([members[0], tiny_run.package_dir], tiny_dataset_csv, tmp_path / "e", version="1")
    assert not (tmp_path / "e").exists()  # refused before anything was written


def _shift_evaluations(package: Path) -> list[dict]:
    return [
        e
        for key, e in ModelPackage.open(package).manifest.evaluations.items()
        if key.endswith("/shift-holdout")
    ]


def test_the_shift_hold_out_is_scored_once_and_rescored_alike(
    tiny_dataset_csv: Path, members: list[Path], tmp_path: Path
) -> None:
    """Training held the latest patients out of everything, scored the package there once, and
    `cxr evaluate --split shift-holdout` recomputes the same images from the package's config."""
    from typer.testing import CliRunner

    from cxr_pneumonia.cli import app
    from cxr_pneumonia.data.catalog import read_manifest_csv
    from cxr_pneumonia.data.splits import assert_patient_disjoint
    from cxr_pneumonia.training.ensemble import build_ensemble

    split = json.loads((members[0].parent / "split.json").read_text())
    by_path = {r.path: r for r in read_manifest_csv(members[0].parent / "manifest.csv").rows}
    sides = [[by_path[p] for p in split[side]] for side in ("train", "val", "shift_holdout")]
    assert all(sides)
    assert_patient_disjoint(*sides)
    (recorded,) = _shift_evaluations(members[0])
    assert recorded["images"] == len(sides[2]) and recorded["split"] == "shift-holdout"
    assert ModelPackage.open(members[0]).manifest.training["split_counts"]["shift_holdout"]["images"] == len(
        sides[2]
    )

    args = [
        "evaluate",
        "--model",
        str(members[0]),
        "--data",
        str(tiny_dataset_csv),
        "--split",
        "shift-holdout",
    ]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.output[result.output.index("{") :])
    assert again["images"] == recorded["images"]
    assert again["pneumonia"]["auroc"] == pytest.approx(recorded["pneumonia"]["auroc"])

    built = build_ensemble(members, tiny_dataset_csv, tmp_path / "e", version="9.2.0")
    (ensemble_shift,) = _shift_evaluations(tmp_path / "e")
    assert ensemble_shift["images"] == recorded["images"]
    assert ensemble_shift["model_digest"] == built.digest
    assert "shift hold-out" in (tmp_path / "e" / "MODEL_CARD.md").read_text()


def test_members_with_another_shift_hold_out_are_refused(tiny_dataset_csv: Path) -> None:
    """One member trained on images the other holds out: the ensemble would have no hold-out."""
    from cxr_pneumonia.data.catalog import scan
    from cxr_pneumonia.training.config import TrainConfig
    from cxr_pneumonia.training.run import shared_split

    same = {"val_fraction": 0.25, "val_strategy": "earliest"}
    configs = [TrainConfig(shift_holdout=0.2, **same), TrainConfig(**same)]
    with pytest.raises(DataError, match="another shift hold-out"):
        shared_split(scan(tiny_dataset_csv, verify=False), configs)


def test_a_package_without_a_shift_hold_out_cannot_be_scored_on_one(
    tiny_dataset_csv: Path, tiny_run, members: list[Path], kermany: Path, tmp_path: Path
) -> None:
    from tiny_dataset import write_tiny_csv
    from typer.testing import CliRunner

    from cxr_pneumonia.cli import app

    def evaluate(model: Path, data: Path) -> str:
        args = ["evaluate", "--model", str(model), "--data", str(data), "--split", "shift-holdout"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "Traceback" not in result.output
        return " ".join(result.output.split())

    assert "was trained without a shift hold-out" in evaluate(tiny_run.package_dir, tiny_dataset_csv)
    other = write_tiny_csv(kermany, tmp_path / "other.csv", per_class=10)
    assert "cannot be recomputed" in evaluate(members[0], other)


def test_members_of_another_dataset_version_are_refused(
    kermany: Path, members: list[Path], tmp_path: Path
) -> None:
    from tiny_dataset import write_tiny_csv

    from cxr_pneumonia.training.ensemble import build_ensemble

    other = write_tiny_csv(kermany, tmp_path / "other.csv", per_class=10)
    with pytest.raises(DataError, match="cannot be recomputed"):
        build_ensemble(members, other, tmp_path / "e", version="1")


def test_int8_ensemble_keeps_the_contract(
    tiny_dataset_csv: Path, members: list[Path], kermany: Path, tmp_path: Path
) -> None:
    """Quantized convolutions, a float head: the Predictor's head check and exact Grad-CAM still hold,
    and everything is fitted on the quantized graph (its OOD reference differs from the float one's)."""
    import onnx

    from cxr_pneumonia.inference import Predictor
    from cxr_pneumonia.training.ensemble import build_ensemble

    made = build_ensemble(
        members, tiny_dataset_csv, tmp_path / "int8", version="9.1.0", int8=True, calibration_images=8
    )
    record = made.training["ensemble"]["int8"]
    assert record["calibration_images"] == 8 and record["max_abs_logit_change"] > 0
    graph = onnx.load(str(tmp_path / "int8" / ONNX_NAME)).graph
    assert {"QuantizeLinear", "DequantizeLinear", "Gemm"} <= {node.op_type for node in graph.node}
    floats = {init.name for init in graph.initializer if init.data_type == onnx.TensorProto.FLOAT}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    grouped = [n for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert grouped and all(n.input[1] in floats for n in grouped)  # depthwise weights stay float
    assert any(n.input[1] not in floats for n in convs if n not in grouped)  # the others are int8
    float_made = build_ensemble(members, tiny_dataset_csv, tmp_path / "float", version="9.1.1")
    assert made.calibration.temperature != float_made.calibration.temperature
    image = sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[0]
    prediction = Predictor(ModelPackage.open(tmp_path / "int8")).predict(image, heatmap=True)
    assert prediction.model.version == "9.1.0" and prediction.heatmap is not None


def test_unknown_int8_calibration_is_a_usage_error(members: list[Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cxr_pneumonia.cli import app

    args = ["ensemble", "--member", str(members[0]), "--member", str(members[1]), "--data", str(tmp_path)]
    result = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "e"), "--version", "1", "--int8-calibration", "mean"]
    )
    assert result.exit_code == 2 and "minmax, percentile, entropy" in result.output
    assert "Traceback" not in result.output
