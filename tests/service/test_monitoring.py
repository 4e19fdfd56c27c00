"""The online monitor inside the service: /api/v1/monitoring (admin, auditor), the drift gauges on
/metrics, reviewed performance once enough reviews are in, and a broken monitor never failing /predict."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from .conftest import API, Service

SMALL_WINDOW = {
    "monitoring_window": 30,
    "monitoring_min_count": 20,
    "monitoring_eval_every": 5,
    "monitoring_persistence": 2,
    "monitoring_min_reviews": 4,
}


def _wait_for(service: Service, predicate: Callable[[dict], bool], timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = service.client.get(f"{API}/monitoring", headers=service.key("auditor")).json()
        if predicate(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_monitoring_route_metrics_and_reviews(
    make_service: Callable[..., Service], monitored_model_path: Path, in_population_images, shifted
) -> None:
    service = make_service(own_predictor=True, model_path=monitored_model_path, **SMALL_WINDOW)
    ids = []
    for path in in_population_images(24):
        response = service.predict(path.read_bytes())
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    assert service.client.post(f"{API}/predict", files={"file": ("x.png", b"not an image")},
                               headers=service.key("clinician")).status_code == 400  # fmt: skip
    body = _wait_for(service, lambda b: b["current"] is not None and b["current"]["window_size"] == 25)
    assert body["active"] and body["current"]["window_size"] == 25, body
    tests = {t["name"]: t for t in body["current"]["tests"]}
    assert tests["rate_refusal"]["n"] == 25 and tests["input_mean"]["p_value"] is not None
    assert body["history"] and set(body["history"][-1]["scores"]) == {"input", "feature", "output", "rate"}

    assert service.client.get(f"{API}/monitoring", headers=service.key("admin")).status_code == 200
    assert service.client.get(f"{API}/monitoring", headers=service.key("clinician")).status_code == 403

    # reviews: nothing reported under CXR_MONITORING_MIN_REVIEWS, then every rate
    clinician = service.key("clinician")
    for prediction_id in ids[:4]:
        reviewed = service.client.post(f"{API}/predictions/{prediction_id}/review", json={"label": "pneumonia"},
                                       headers=clinician)  # fmt: skip
        assert reviewed.status_code == 201, reviewed.text
    reviewed = service.client.get(f"{API}/monitoring", headers=service.key("auditor")).json()["reviewed"]
    assert reviewed[0]["n"] == 4 and reviewed[0]["reported"] and "sensitivity" in reviewed[0]

    exposition = service.client.get("/metrics").text
    assert 'cxr_drift_alarm{kind="input"} 0.0' in exposition
    assert 'cxr_drift_score{kind="feature"}' in exposition
    assert "cxr_window_refusal_rate 0.04" in exposition
    assert "cxr_reviewed_sensitivity{" in exposition and "cxr_card_sensitivity{" in exposition


def test_a_broken_monitor_never_fails_a_prediction(
    make_service: Callable[..., Service], monitored_model_path: Path, in_population_images, shifted
) -> None:
    service = make_service(own_predictor=True, model_path=monitored_model_path, **SMALL_WINDOW)
    with service.store.engine.begin() as connection:
        connection.execute(text("DROP TABLE monitoring_samples"))
    path = in_population_images(2)[0]
    assert service.predict(shifted(path)).status_code == 200
    monitor = service.app.state.cxr.monitor
    deadline = time.monotonic() + 20
    while not monitor.gaps and time.monotonic() < deadline:
        time.sleep(0.1)
    assert monitor.gaps["write_error"] >= 1
    assert 'cxr_monitor_gaps_total{reason="write_error"}' in service.client.get("/metrics").text
