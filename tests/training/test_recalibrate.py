"""`cxr recalibrate`: same weights, a decision rule refitted on a site's labelled cases, a new
package version that names its parent and the data."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxr_pneumonia.cli import app
from cxr_pneumonia.errors import DataError
from cxr_pneumonia.package import ModelPackage
from cxr_pneumonia.training.recalibrate import recalibrate


def _site_csv(kermany: Path, tmp_path: Path, n: int) -> Path:
    rows = [(p, "normal") for p in sorted((kermany / "train" / "NORMAL").glob("*.jpeg"))[:n]]
    rows += [(p, "pneumonia") for p in sorted((kermany / "train" / "PNEUMONIA").glob("*.jpeg"))[:n]]
    path = tmp_path / "site.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows([(str(p.resolve()), label) for p, label in rows])
    return path


def test_recalibration_writes_a_child_package(
    bundled_model_path: Path, kermany: Path, tmp_path: Path
) -> None:
    parent = ModelPackage.open(bundled_model_path).manifest
    out = tmp_path / "site-model"
    result = CliRunner().invoke(
        app,
        [
            "recalibrate",
            "--model",
            str(bundled_model_path),
            "--data",
            str(_site_csv(kermany, tmp_path, 24)),
            "--out",
            str(out),
            "--version",
            "9.9.9-site",
        ],
    )
    assert result.exit_code == 0, result.output
    child = ModelPackage.open(out).manifest  # verifies every file
    assert child.version == "9.9.9-site"
    assert child.parent is not None
    assert child.parent["digest"] == parent.digest and child.parent["relation"] == "recalibrated"
    assert child.parent["recalibrated_on"]["images"] == 48
    assert child.parent["recalibrated_on"]["normal"] == 24
    assert child.digest != parent.digest
    assert child.files["model.onnx"] == parent.files["model.onnx"]  # same weights
    assert child.calibration.temperature != parent.calibration.temperature
    assert child.evaluations == {}  # the parent's numbers describe another decision rule
    card = (out / "MODEL_CARD.md").read_text()
    assert "## Lineage" in card and parent.digest in card
    raw = json.loads((out / "model.json").read_text())
    assert raw["parent"]["digest"] == parent.digest and raw["digest"] == child.digest


def test_too_few_cases_are_refused(bundled_model_path: Path, kermany: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        recalibrate(bundled_model_path, _site_csv(kermany, tmp_path, 5), tmp_path / "out")
    assert error.value.code == "data_too_small"


def test_an_existing_output_is_never_overwritten(
    bundled_model_path: Path, kermany: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(bundled_model_path, out)
    with pytest.raises(DataError) as error:
        recalibrate(bundled_model_path, _site_csv(kermany, tmp_path, 24), out)
    assert error.value.code == "out_exists"


def test_recalibration_from_reviews_needs_no_pytorch() -> None:
    """The serving image has no PyTorch: the CLI, the review recalibration and the job runner must
    not import it."""
    import subprocess
    import sys

    code = (
        "import sys; import cxr_pneumonia.cli, cxr_pneumonia.training.recalibrate_reviews, "
        "cxr_pneumonia.jobs.runner; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_rule_that_measures_worse_is_named_in_words() -> None:
    from cxr_pneumonia.training.recalibrate_reviews import worse_after

    before = {"sensitivity": 0.96, "ece": 0.05, "brier": 0.06, "referral_rate": 0.10}
    same = dict(before)
    assert worse_after(before, same, 0.95) == []
    after = {"sensitivity": 0.93, "ece": 0.07, "brier": 0.07, "referral_rate": 0.25}
    warnings = worse_after(before, after, 0.95)
    assert [w.split(" (")[0] for w in warnings] == [
        "sensitivity fell below the operating point",
        "calibration error rose",
        "Brier score rose",
        "referrals rose",
    ]
    # within the slack, or already below the operating point before: no warning
    near = {"sensitivity": 0.96, "ece": 0.055, "brier": 0.063, "referral_rate": 0.15}
    assert worse_after(before, near, 0.95) == []
    assert worse_after(before | {"sensitivity": 0.90}, after, 0.95)[0].startswith("calibration")
    # a measure a class without cases left empty (None after JSON) is not compared
    assert worse_after(before | {"ece": None}, after | {"ece": None}, 0.95)[1].startswith("Brier")
