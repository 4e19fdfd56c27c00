"""The administrator sees the served models and, with a shadow, how it agrees with the champion: a
table and a scatter plot the page draws itself."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from bundled_model import BUNDLED_ID
from playwright.sync_api import expect
from registry_helpers import derive_package

from .conftest import API, Shots, running_server
from .steps import sign_in


@pytest.fixture
def shadowed_server(tmp_path: Path, bundled_model_path: Path):
    shadow = derive_package(bundled_model_path, tmp_path / "shadow", version="1.1.0", temperature_factor=0.8)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with running_server(data_dir, bundled_model_path, shadow_model_uri=str(shadow)) as running:
        yield running


def test_the_admin_sees_the_models_and_their_agreement(
    new_page, shadowed_server, accepted_chests, shots: Shots
) -> None:
    server = shadowed_server
    key = server.create_key("clinician")
    with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=60) as client:
        for chest in accepted_chests[:3]:
            assert (
                client.post(f"{API}/predict", files={"file": ("x.jpeg", chest.path.read_bytes())}).status_code
                == 200
            )
        with httpx.Client(base_url=server.url, headers=server.admin(), timeout=60) as admin:
            for _ in range(100):  # the shadow runs in the background
                if admin.get(f"{API}/models").json()["shadow_queue"]["recorded"] == 3:
                    break
                time.sleep(0.1)
    page = new_page(on=server)
    sign_in(page, server.admin_username, server.admin_password)
    table = page.locator("#models-table")
    expect(table.locator("tr[data-role=champion]")).to_contain_text(BUNDLED_ID)
    expect(table.locator("tr[data-role=shadow]")).to_contain_text("cxr-effnet-lite0:1.1.0")
    agreement = page.locator("#agreement-table")
    expect(agreement).to_contain_text("Images read by both")
    expect(agreement.locator("tr").first).to_contain_text("3")
    expect(page.locator("#agreement-plot circle")).to_have_count(3)
    shots(page, "models-agreement")
