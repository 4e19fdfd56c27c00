"""The reference command makes a new, verified package; replay runs real images through the monitor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cxr_pneumonia.cli import app
from cxr_pneumonia.inference import Predictor
from cxr_pneumonia.monitoring.packaging import RELATION, monitored_version
from cxr_pneumonia.monitoring.reference import REFERENCE_NAME, SUMMARY_NAME, Reference
from cxr_pneumonia.package import ModelPackage


def _val_csv(kermany: Path, out: Path, n: int = 40) -> Path:
    """A manifest CSV of train images marked val (the reference never reads test)."""
    images = sorted((kermany / "train" / "NORMAL").glob("*.jpeg"))[: n // 2]
    images += sorted((kermany / "train" / "PNEUMONIA").glob("*.jpeg"))[: n // 2]
    lines = ["path,label,split"] + [
        f"{p},{'normal' if p.parent.name == 'NORMAL' else 'pneumonia'},val" for p in images
    ]
    out.write_text("\n".join(lines) + "\n")
    return out


def test_monitored_version() -> None:
    assert monitored_version("1.0.0") == "1.0.0+mon1"
    assert monitored_version("1.0.0+mon1") == "1.0.0+mon2"


def test_reference_command_then_replay(kermany: Path, bundled_model_path: Path, tmp_path: Path) -> None:
    csv = _val_csv(kermany, tmp_path / "val.csv")
    out = tmp_path / "pkg"
    runner = CliRunner()
    made = runner.invoke(
        app, ["monitor", "reference", str(bundled_model_path), "--data", str(csv), "--out", str(out)]
    )
    assert made.exit_code == 0, made.output
    summary = json.loads(made.output)
    package = ModelPackage.open(out)
    old = ModelPackage.open(bundled_model_path).manifest
    assert {REFERENCE_NAME, SUMMARY_NAME} <= set(package.manifest.files)
    assert package.manifest.parent == {"digest": old.digest, "model_id": old.model_id, "relation": RELATION}
    assert package.manifest.version == f"{old.version}+mon1" and summary["digest"] != old.digest
    reference = Reference.in_package(package)
    assert reference is not None and reference.size == 40 and reference.features.shape[1] == 12
    # the projection of a prediction's pooled features is what the reference holds for that image
    predictor = Predictor(package)
    prediction = predictor.predict(sorted((kermany / "train" / "NORMAL").glob("*.jpeg"))[0], heatmap=False)
    assert prediction.pooled_features is not None and prediction.intensity is not None
    assert np.allclose(reference.sample(prediction, "t").projection, reference.features[0], atol=1e-3)

    shifted = sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[:12]
    replayed = runner.invoke(
        app,
        ["monitor", "replay", "--model", str(out), str(shifted[0].parent / "IM-000[1-3]*.jpeg"), "--json"],
    )
    assert replayed.exit_code == 0, replayed.output
    result = json.loads(replayed.output)
    assert result["images"] == result["sources"][0]["count"] > 0
    assert {t["kind"] for t in result["tests"]} <= {"input", "feature", "output", "rate"}


def test_replay_of_a_missing_source_is_a_clear_error(bundled_model_path: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["monitor", "replay", "--model", str(bundled_model_path), str(tmp_path / "none")]
    )
    assert result.exit_code == 2
