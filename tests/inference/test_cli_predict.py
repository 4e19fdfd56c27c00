"""`cxr predict` and `cxr evaluate` through the real command-line app."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxr_pneumonia.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def sample(kermany: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    """20 real test images and a CSV (path,label,subtype,split) naming them."""
    files = sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[:8]
    files += sorted((kermany / "test" / "PNEUMONIA").glob("*bacteria*.jpeg"))[:6]
    files += sorted((kermany / "test" / "PNEUMONIA").glob("*virus*.jpeg"))[:6]
    path = tmp_path_factory.mktemp("sample") / "sample.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "subtype", "split"])
        for f in files:
            label = "normal" if f.parent.name == "NORMAL" else "pneumonia"
            subtype = "viral" if "virus" in f.name else ("bacterial" if label == "pneumonia" else "")
            writer.writerow([str(f), label, subtype, "test"])
    return files, path


def test_predict_json_and_evaluate_agree(sample, bundled_model_path: Path, tmp_path: Path) -> None:
    files, csv_path = sample
    result = runner.invoke(
        app, ["predict", *map(str, files), "--model", str(bundled_model_path), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout[result.stdout.index("{") :])
    assert payload["summary"]["total"] == len(files)
    by_path = {r["path"]: r for r in payload["results"]}

    out = tmp_path / "eval"
    evaluated = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(bundled_model_path),
            "--data",
            str(csv_path),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    for name in (
        "report.json",
        "report.md",
        "roc.png",
        "reliability.png",
        "confusion.png",
        "predictions.csv",
    ):
        assert (out / name).is_file()
    threshold = json.loads((out / "report.json").read_text())["pneumonia"]["threshold"]
    with (out / "predictions.csv").open() as handle:
        for row in csv.DictReader(handle):
            predicted = by_path[row["path"]]
            if predicted["status"] != "ok":
                continue
            p = 1.0 - float(row["p_normal"])
            assert p == pytest.approx(predicted["p_pneumonia"], abs=1e-5)
            assert ("pneumonia" if p >= threshold else "normal") == predicted["label"]


def test_predict_reports_bad_files_and_goes_on(
    bundled_model_path: Path, kermany: Path, tmp_path: Path
) -> None:
    good = sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[0]
    bad = tmp_path / "broken.jpeg"
    bad.write_bytes(good.read_bytes()[:300])
    out_file = tmp_path / "out.csv"
    result = runner.invoke(
        app,
        [
            "predict",
            str(good),
            str(bad),
            "--model",
            str(bundled_model_path),
            "--format",
            "csv",
            "--output",
            str(out_file),
        ],
    )
    assert result.exit_code == 1
    rows = list(csv.DictReader(out_file.open()))
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert rows[1]["reason"] == "corrupt_image"


def test_predict_writes_heatmaps_for_a_directory(
    bundled_model_path: Path, shared_dicom: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "predict",
            str(shared_dicom),
            "--model",
            str(bundled_model_path),
            "--heatmaps",
            str(tmp_path / "hm"),
        ],
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "hm").glob("*.png"))
    assert written == sorted(f"{p.name}.heatmap.png" for p in shared_dicom.glob("*.dcm"))


def test_predict_with_no_inputs_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", str(tmp_path / "missing")])
    assert result.exit_code == 2
