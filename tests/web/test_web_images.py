"""Opening a result later, in another tab: the radiograph when the service keeps images, else the heatmap
alone with a note saying why."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import API, Chest, Server, Shots, running_server
from .steps import assert_shows, go, result, sign_in, upload


@pytest.fixture(scope="module")
def keeping_server(tmp_path_factory: pytest.TempPathFactory, bundled_model_path: Path) -> Iterator[Server]:
    """A second service that keeps the radiographs (encrypted at rest with a generated key)."""
    with running_server(
        tmp_path_factory.mktemp("web-serve-images"), bundled_model_path, store_images="true"
    ) as running:
        yield running


def open_from_history(page, prediction_id: str):
    go(page, "History")
    page.locator(f"#history-table tr[data-id='{prediction_id}']").get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"#/result/{prediction_id}$"))
    return result(page, "#result-host")


def upload_and_forget(new_page, server: Server, chest: Chest) -> tuple[str, str, str]:
    """Upload in one tab and close it; returns (username, password, prediction id)."""
    username, password = server.create_user("clinician")
    page = new_page(on=server)
    sign_in(page, username, password)
    upload(page, chest.path)
    prediction_id = result(page).get_attribute("data-prediction-id")
    assert prediction_id
    page.context.close()
    return username, password, prediction_id


def test_without_stored_images_the_heatmap_is_shown_alone(
    new_page, server: Server, shots: Shots, chest: Chest
) -> None:
    username, password, prediction_id = upload_and_forget(new_page, server, chest)
    page = new_page()
    sign_in(page, username, password)
    article = open_from_history(page, prediction_id)
    assert_shows(article, chest.prediction)
    expect(article.locator("img.radiograph")).to_have_count(0)
    expect(article.locator(".stage-note")).to_have_text(re.compile("does not keep radiographs"))
    shots(page, "70-history-result-heatmap-only")


def test_with_stored_images_the_radiograph_comes_from_the_service(
    new_page, keeping_server: Server, shots: Shots, chest: Chest
) -> None:
    username, password, prediction_id = upload_and_forget(new_page, keeping_server, chest)
    page = new_page(on=keeping_server)
    sign_in(page, username, password)
    article = open_from_history(page, prediction_id)
    assert_shows(article, chest.prediction)
    image = article.locator("img.radiograph")
    expect(image).to_have_attribute("src", re.compile(r"^blob:"))  # fetched with the credential
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    expect(article.locator(".stage-note")).to_be_hidden()
    shots(page, "71-history-result-stored-image")


def test_history_rows_show_the_callers_reference_and_a_thumbnail(
    new_page, keeping_server: Server, shots: Shots, chest: Chest
) -> None:
    """Eleven rows of "Pneumonia · 97%" cannot be told apart: the reference and the image can."""
    key = keeping_server.create_key("integration")
    with keeping_server.client() as client:
        posted = client.post(
            f"{API}/predict",
            files={"file": ("x.jpeg", chest.path.read_bytes())},
            data={"reference": "ACC-77-0042"},
            headers={"X-API-Key": key},
        )
    assert posted.status_code == 200, posted.text
    username, password = keeping_server.create_user("clinician")
    page = new_page(on=keeping_server)
    sign_in(page, username, password)
    go(page, "History")
    row = page.locator(f"#history-table tr[data-id='{posted.json()['id']}']")
    expect(row.locator("[data-testid=reference]")).to_have_text("ACC-77-0042")
    thumb = row.locator("[data-testid=thumbnail]")
    expect(thumb).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    shots(page, "72-history-reference-thumbnail")
