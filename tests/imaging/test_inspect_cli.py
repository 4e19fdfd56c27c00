"""`cxr inspect FILE --json`: what the loader saw, and nothing that identifies the patient."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from cxr_pneumonia.cli import app


def inspect_json(path: Path) -> tuple[dict, str]:
    result = CliRunner().invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stdout


@pytest.mark.parametrize("name", ["cr-chest-monochrome2-jpeg-baseline.dcm", "cr-chest-fake-monochrome1.dcm"])
def test_inspect_shared_dicom(shared_dicom: Path, name: str) -> None:
    path = shared_dicom / name
    report, text = inspect_json(path)
    assert report["format"] == "dicom"
    assert (report["width"], report["height"]) == (1024, 1024)
    assert (report["modality"], report["body_part"], report["view_position"]) == ("CR", "CHEST", "PA")
    assert set(report["pixels"]) >= {"min", "max", "mean", "std"}
    assert 0.0 <= report["pixels"]["min"] < report["pixels"]["mean"] < report["pixels"]["max"] <= 1.0
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    _assert_no_identity(report, text, ds)


def test_inspect_rg1_has_no_patient_identity(pydicom_data_file) -> None:
    path = pydicom_data_file("RG1_UNCR.dcm")
    report, text = inspect_json(path)
    assert report["modality"] == "CR" and report["photometric"] == "MONOCHROME1"
    _assert_no_identity(report, text, pydicom.dcmread(path, stop_before_pixels=True))


def _assert_no_identity(report: dict, text: str, ds: pydicom.Dataset) -> None:
    for key in report:
        assert not any(word in key.lower() for word in ("name", "patient_id", "birth", "accession"))
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName"):
        value = str(ds.get(keyword, "") or "").strip()
        if len(value) >= 4:  # long enough not to match by accident
            assert value not in text, f"{keyword} leaked into the inspect output"


def test_inspect_refuses_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    result = CliRunner().invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 2
    assert "not a PNG, JPEG, TIFF or DICOM" in result.output


def test_inspect_error_shows_the_error_code(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    result = CliRunner().invoke(app, ["inspect", str(path), "--json"])
    assert "unsupported_format" in result.output
