"""An auditor opens the Monitoring view: alarms by kind, drift and rate time series drawn by the page
(SVG, no library), the newest window's tests, and the reviewed performance."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from .conftest import API, Server, Shots, running_server
from .steps import sign_in


@pytest.fixture(scope="module")
def monitored_server(
    tmp_path_factory: pytest.TempPathFactory,
    monitored_model_path: Path,
    in_population_images: Callable[[int], list[Path]],
    shifted: Callable[..., bytes],
    kermany: Path,
) -> Iterator[Server]:
    """A service of the monitored package, sent 20 in-population images and then 30 shifted ones."""
    small = {"monitoring_window": "30", "monitoring_min_count": "20", "monitoring_eval_every": "5",
             "monitoring_eval_seconds": "1", "monitoring_persistence": "2", "monitoring_min_reviews": "2"}  # fmt: skip
    with running_server(tmp_path_factory.mktemp("web-monitor"), monitored_model_path, **small) as server:
        headers = {"X-API-Key": server.create_key("clinician")}
        images = [p.read_bytes() for p in in_population_images(20)]
        images += [shifted(p) for p in sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[:30]]
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            for i, image in enumerate(images):
                response = client.post(f"{API}/predict", files={"file": ("x.jpeg", image)})
                assert response.status_code == 200, response.text
                if i < 3:
                    label = "pneumonia" if i % 2 else "normal"
                    reviewed = client.post(
                        f"{API}/predictions/{response.json()['id']}/review", json={"label": label}
                    )
                    assert reviewed.status_code == 201
                time.sleep(0.05)  # spread the evaluations in time a little, as real traffic does
        time.sleep(3)  # the background writer evaluates within CXR_MONITORING_EVAL_SECONDS
        yield server


def test_auditor_sees_the_drift_alarm_and_time_series(
    new_page, monitored_server: Server, shots: Shots
) -> None:
    username, password = monitored_server.create_user("auditor")
    page = new_page(on=monitored_server)
    sign_in(page, username, password)
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Monitoring").click()
    expect(page.get_by_role("heading", name="Monitoring", level=1)).to_be_visible()
    expect(page.locator("#monitoring-summary")).to_contain_text("Newest window: 30 inputs")
    expect(page.locator('#monitoring-alarms [data-kind="input"]')).to_have_text("Input: drift alarm")
    drift = page.get_by_role("img", name="Drift score by kind over time")
    expect(drift.locator("path.series-input")).to_have_count(1)
    expect(drift.locator("line.chart-threshold")).to_have_count(1)
    rates = page.get_by_role("img", name="Window rates over time")
    expect(rates.locator("path.series-refusal")).to_have_count(1)
    tests = page.locator("#monitoring-tests tbody tr")
    expect(tests.filter(has_text="input_mean")).to_have_count(1)
    expect(page.locator("#monitoring-tests tbody tr.alarm").first).to_be_visible()
    expect(page.locator("#monitoring-reviewed tbody tr")).to_have_count(1)
    expect(page.locator("#monitoring-reviewed tbody tr")).to_contain_text(
        re.compile(r"cxr-effnet-lite0:\d+\.\d+\.\d+\+mon1")
    )
    shots(page, "60-auditor-monitoring")


def test_a_clinician_has_no_monitoring_view(new_page, monitored_server: Server) -> None:
    username, password = monitored_server.create_user("clinician")
    page = new_page(on=monitored_server)
    sign_in(page, username, password)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Monitoring")).to_be_hidden()
    page.goto(monitored_server.url + "/#/monitoring")
    expect(page.locator("#notfound-text")).to_contain_text("does not give access")
