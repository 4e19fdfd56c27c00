"""The administrator starts a recalibration from the page, watches it run in its own process, and
reads the before/after numbers on the held-out reviewed cases."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from reviewed_cases import review_real_cases

from .conftest import Shots, running_server
from .steps import go, sign_in


@pytest.fixture
def reviewed_server(tmp_path: Path, bundled_model_path: Path, request: pytest.FixtureRequest):
    registry = {}
    if importlib.util.find_spec("mlflow") is not None or os.environ.get("CI") == "true":
        registry["mlflow_tracking_uri"] = request.getfixturevalue("mlflow_server").url
        registry["registry_model_name"] = f"web-jobs-{tmp_path.name}"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with running_server(data_dir, bundled_model_path, **registry) as running:
        key = running.create_key("clinician")
        with httpx.Client(base_url=running.url, timeout=60) as client:
            review_real_cases(client, {"X-API-Key": key}, request.getfixturevalue("kermany"), 30)
        yield running


def test_the_admin_recalibrates_on_reviewed_cases_and_sees_before_and_after(
    new_page, reviewed_server, shots: Shots
) -> None:
    server = reviewed_server
    page = new_page(on=server)
    sign_in(page, server.admin_username, server.admin_password)
    go(page, "Model jobs")
    expect(page.get_by_role("heading", name="Model jobs", level=1)).to_be_visible()
    expect(page.locator("#jobs-table")).to_contain_text("No jobs yet.")
    page.get_by_label("Split seed").fill("3")
    page.get_by_role("button", name="Start recalibration").click()
    status = page.get_by_test_id("job-status")
    expect(status).to_be_visible()
    expect(status).to_have_attribute("data-status", "succeeded", timeout=240_000)
    expect(page.locator("#job-failure")).to_be_hidden()
    expect(page.get_by_test_id("job-cases")).to_contain_text(
        "18 reviewed cases held out from fitting (seed 3"
    )
    metrics = page.locator("#job-metrics")
    for measure in ("sensitivity", "specificity", "referral_rate", "ece", "temperature"):
        row = metrics.locator(f"tr[data-measure={measure}] td")
        expect(row).to_have_count(2)
        expect(row.nth(0)).not_to_have_text("—")
        expect(row.nth(1)).not_to_have_text("—")
    # the evaluation's warnings (where the new rule measures worse), in words above the table, or none
    with httpx.Client(base_url=server.url, timeout=30) as client:
        jobs = client.get("/api/v1/admin/jobs", headers={"X-API-Key": server.create_key("admin")})
    assert jobs.status_code == 200, jobs.text
    warnings = jobs.json()["jobs"][0]["result"]["evaluation"]["warnings"]
    shown = page.get_by_test_id("job-warnings")
    if warnings:
        expect(shown).to_be_visible()
        expect(shown).to_contain_text(warnings[0])
    else:
        expect(shown).to_be_hidden()
    expect(page.locator("#job-package")).to_contain_text("+recal.")
    if importlib.util.find_spec("mlflow") is not None:
        expect(page.locator("#job-package")).to_contain_text("alias “challenger”: not in service")
    expect(page.locator("#jobs-table tr[data-status=succeeded]")).to_have_count(1)
    page.locator("#job-log-box summary").click()
    expect(page.locator("#job-log")).to_contain_text("fitting the decision rule")
    shots(page, "jobs-recalibration")
