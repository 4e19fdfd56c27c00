"""Rate limits (429 with Retry-After) and the Prometheus metrics."""

from __future__ import annotations

import re

from .conftest import API, Service, assert_error_body


def _sample(text: str, metric: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(metric + "{") and not line.startswith(metric + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_credential_over_its_limit_gets_429_with_retry_after(make_service) -> None:
    service = make_service(rate_limit="3/minute")
    headers = service.key("clinician")
    codes = [service.client.get(f"{API}/auth/me", headers=headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = service.client.get(f"{API}/auth/me", headers=headers)
    assert_error_body(response, 429, "rate_limited")
    assert 1 <= int(response.headers["retry-after"]) <= 60
    # Another credential from the same address has its own budget.
    assert service.client.get(f"{API}/auth/me", headers=service.key("auditor")).status_code == 200


def test_the_client_address_has_a_limit_over_all_its_credentials(make_service) -> None:
    service = make_service(rate_limit_client="4/minute")
    roles = ["clinician", "auditor", "admin", "integration", "clinician"]
    codes = [service.client.get(f"{API}/auth/me", headers=service.key(role)).status_code for role in roles]
    assert codes == [200, 200, 200, 200, 429]


def test_missing_credentials_hit_the_anonymous_limit(make_service) -> None:
    """(Failed sign-ins are throttled per account instead: test_login_throttle.py.)"""
    service = make_service(rate_limit_anonymous="3/minute")
    codes = [service.client.get(f"{API}/predictions").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert_error_body(service.client.get(f"{API}/predictions"), 429, "rate_limited")


def test_health_and_metrics_are_not_rate_limited(make_service) -> None:
    service = make_service(rate_limit_anonymous="1/minute", rate_limit_client="1/minute")
    for _ in range(5):
        assert service.client.get(f"{API}/health/live").status_code == 200
        assert service.client.get(f"{API}/metrics").status_code == 200


def test_metrics_count_requests_predictions_refusals_and_name_the_model(
    service: Service, chest_jpeg: bytes
) -> None:
    before = service.client.get("/metrics").text
    prediction = service.predict(chest_jpeg).json()
    service.predict(b"", name="empty.jpeg")
    service.client.get(f"{API}/predictions/{prediction['id']}", headers=service.key("auditor"))
    after = service.client.get(f"{API}/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def delta(metric: str, **labels: str) -> float:
        return _sample(text, metric, **labels) - _sample(before, metric, **labels)

    assert delta("cxr_predictions_total", label=prediction["label"], source="api") == 1
    assert delta("cxr_refusals_total", reason="empty_file", source="api") == 1
    assert delta("cxr_http_requests_total", route=f"{API}/predict", method="POST", status="200") == 1
    assert delta("cxr_http_requests_total", route=f"{API}/predict", method="POST", status="400") == 1
    assert (
        delta(
            "cxr_http_requests_total",
            route=f"{API}/predictions/{{prediction_id}}",
            method="GET",
            status="200",
        )
        == 1
    )
    assert delta("cxr_http_request_duration_seconds_count", route=f"{API}/predict", method="POST") == 2
    assert delta("cxr_referrals_total", source="api") == (1 if prediction["refer"] else 0)
    model = prediction["model"]
    assert (
        _sample(text, "cxr_model_info", name=model["name"], version=model["version"], sha256=model["sha256"])
        == 1
    )
    assert "cxr_inference_duration_seconds_bucket" in text and "cxr_http_requests_in_flight" in text
