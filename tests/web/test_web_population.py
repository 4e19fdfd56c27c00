"""An input outside the model's population: the page leads with the warning, never a red "Pneumonia"."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from playwright.sync_api import expect

from cxr_pneumonia.package import ModelPackage

from .conftest import Server, Shots
from .steps import result, sign_in, upload


@pytest.fixture
def adult_dicom(chest_dicom: Path, tmp_path: Path) -> Path:
    """The accepted child's radiograph, its DICOM saying the patient is 45."""
    ds = pydicom.dcmread(chest_dicom)
    ds.PatientAge = "045Y"
    path = tmp_path / "adult.dcm"
    ds.save_as(path)
    return path


def test_an_adult_dicom_leads_with_outside_the_population(
    new_page, server: Server, shots: Shots, adult_dicom: Path, bundled_model_path: Path
) -> None:
    if ModelPackage.open(bundled_model_path).manifest.population.age_years is None:
        pytest.skip("the served package declares no intended age range")
    username, password = server.create_user("clinician")
    page = new_page()
    sign_in(page, username, password)
    upload(page, adult_dicom)
    article = result(page)
    verdict = article.locator("[data-testid=verdict]")
    expect(verdict).to_have_text("Outside the population this model was trained for — refer")
    expect(verdict).not_to_have_class("verdict pneumonia")
    expect(article.locator("[data-testid=refer]")).to_be_visible()
    expect(article.locator("[data-testid=outside-sub]")).to_contain_text("for reference only")
    shots(page, "35-outside-population")
