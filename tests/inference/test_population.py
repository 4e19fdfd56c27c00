"""Out-of-population safety: a DICOM outside the package's declared population is answered, flagged
``outside_intended_population``, referred, and every door leads with the warning."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest

from cxr_pneumonia.inference import Predictor
from cxr_pneumonia.inference.output import PredictOutcome, render
from cxr_pneumonia.inference.prediction import OUTSIDE_POPULATION_HEADLINE
from cxr_pneumonia.package import ModelPackage, Population, write_manifest

CHILDREN = Population(
    age_years=(1.0, 6.0), modalities=("CR", "DX"), views=("AP", "PA"), description="children aged 1-5"
)


@pytest.fixture(scope="module")
def children_predictor(bundled_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """The bundled model with the population of its card declared in model.json."""
    copy = tmp_path_factory.mktemp("pop") / "pkg"
    shutil.copytree(bundled_model_path, copy)
    manifest = ModelPackage.open(copy).manifest
    write_manifest(copy, replace(manifest, population=CHILDREN))
    return Predictor.from_package(copy)


def _dicom_with(shared_dicom: Path, tmp_path: Path, **attributes: str) -> Path:
    ds = pydicom.dcmread(shared_dicom / "cr-chest-monochrome2-jpeg-baseline.dcm")
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    out = tmp_path / "case.dcm"
    ds.save_as(out)
    return out


def test_an_adult_dicom_is_flagged_and_referred(
    children_predictor: Predictor, shared_dicom: Path, tmp_path
) -> None:
    result = children_predictor.predict(_dicom_with(shared_dicom, tmp_path, PatientAge="045Y"))
    codes = [f.code for f in result.findings]
    assert "outside_intended_population" in codes
    detail = next(f.detail for f in result.findings if f.code == "outside_intended_population")
    assert "45 years" in detail and "children aged 1-5" in detail
    assert result.refer
    assert result.outside_population
    assert result.headline == OUTSIDE_POPULATION_HEADLINE
    assert result.to_dict()["headline"] == OUTSIDE_POPULATION_HEADLINE


@pytest.mark.parametrize("age", ["003Y", "030M", "005Y"])
def test_a_child_in_the_range_is_not_flagged_for_age(
    children_predictor: Predictor, shared_dicom: Path, tmp_path, age: str
) -> None:
    result = children_predictor.predict(_dicom_with(shared_dicom, tmp_path, PatientAge=age))
    assert "outside_intended_population" not in [f.code for f in result.findings]


@pytest.mark.parametrize("age", ["006Y", "011M", "000D"])
def test_the_range_ends_are_where_the_card_says(
    children_predictor: Predictor, shared_dicom: Path, tmp_path, age: str
) -> None:
    result = children_predictor.predict(_dicom_with(shared_dicom, tmp_path, PatientAge=age))
    assert "outside_intended_population" in [f.code for f in result.findings]


def test_an_undeclared_view_is_flagged(bundled_model_path: Path, shared_dicom: Path, tmp_path) -> None:
    copy = tmp_path / "pkg"
    shutil.copytree(bundled_model_path, copy)
    manifest = ModelPackage.open(copy).manifest
    write_manifest(copy, replace(manifest, population=replace(CHILDREN, views=("PA",))))
    result = Predictor.from_package(copy).predict(
        _dicom_with(shared_dicom, tmp_path, PatientAge="004Y", ViewPosition="AP")
    )
    detail = next(f.detail for f in result.findings if f.code == "outside_intended_population")
    assert "view AP is not one of PA" in detail


def test_a_package_without_a_population_flags_no_age(
    bundled_model_path: Path, shared_dicom: Path, tmp_path
) -> None:
    copy = tmp_path / "pkg"
    shutil.copytree(bundled_model_path, copy)
    manifest = ModelPackage.open(copy).manifest
    write_manifest(copy, replace(manifest, population=Population()))
    result = Predictor.from_package(copy).predict(_dicom_with(shared_dicom, tmp_path, PatientAge="045Y"))
    assert "outside_intended_population" not in [f.code for f in result.findings]


def test_the_cli_table_leads_with_the_warning(
    children_predictor: Predictor, shared_dicom: Path, tmp_path
) -> None:
    path = _dicom_with(shared_dicom, tmp_path, PatientAge="045Y")
    table = render([PredictOutcome.of(path, children_predictor.predict(path))], "table")
    flat = " ".join(table.split())  # rich may wrap a long cell over lines
    assert "Outside the population" in flat
    assert flat.index("Outside the population") < flat.index("(model:")
