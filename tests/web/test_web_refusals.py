"""What is not a frontal chest X-ray is refused, and the page says why in words (never raw JSON)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import Server, Shots
from .steps import assert_in_words, sign_in, upload

# Any refusal of a natural photo reads as one of these (the model decides which check catches it).
PHOTO_WORDS = ("Does not look like a chest X-ray", "Colour picture", "Not shaped like a chest X-ray")


@pytest.fixture
def clinician_page(new_page, server: Server):
    username, password = server.create_user("clinician")
    page = new_page()
    sign_in(page, username, password)
    return page


def refusal(page):
    box = page.locator("#analyse-result [data-testid=refusal]")
    expect(box).to_be_visible(timeout=60_000)
    expect(box).to_have_attribute("role", "alert")
    expect(box.get_by_role("heading", level=2)).to_be_focused()
    return box


def test_a_natural_photo_is_refused_with_the_reason(clinician_page, shots: Shots, photo_png: Path) -> None:
    page = clinician_page
    upload(page, photo_png)
    box = refusal(page)
    text = assert_in_words(box)
    assert "Not analysed" in text
    assert any(words.lower() in text.lower() for words in PHOTO_WORDS), text
    assert "holiday-photo.png" in text
    assert "Upload a frontal (PA or AP) chest radiograph" in text
    expect(page.locator("#analyse-result [data-testid=result]")).to_have_count(0)  # no answer is given
    expect(page.locator("#queue li")).to_have_attribute("data-state", "refused")
    shots(page, "30-refused-photo")


def test_a_ct_slice_is_refused_as_not_a_radiograph(clinician_page, shots: Shots, ct_dicom: Path) -> None:
    page = clinician_page
    upload(page, ct_dicom)
    box = refusal(page)
    expect(box.get_by_role("heading", level=2)).to_have_text("Not analysed: not a radiograph")
    text = assert_in_words(box)
    assert "Only chest X-rays (CR or DX) are read" in text
    assert "modality is CT" in text  # the service's own sentence, quoted as a second line
    shots(page, "31-refused-ct")


def test_a_lateral_view_is_refused(clinician_page, shots: Shots, lateral_dicom: Path) -> None:
    page = clinician_page
    upload(page, lateral_dicom)
    box = refusal(page)
    expect(box.get_by_role("heading", level=2)).to_have_text("Not analysed: lateral view")
    assert "Only frontal chest X-rays (PA or AP) are read" in assert_in_words(box)
    shots(page, "32-refused-lateral")


def test_a_file_that_is_not_an_image_is_explained(clinician_page, shots: Shots, tmp_path: Path) -> None:
    page = clinician_page
    notes = tmp_path / "notes.txt"
    notes.write_text("Patient notes, not an image.\n")
    upload(page, notes)
    box = refusal(page)
    expect(box.get_by_role("heading", level=2)).to_have_text("Cannot read this file")
    assert "PNG, JPEG or DICOM" in assert_in_words(box)
    shots(page, "33-not-an-image")
