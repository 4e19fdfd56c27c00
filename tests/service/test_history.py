"""GET /predictions with filters and pages, GET /predictions/{id}, reviews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from .conftest import API, Service, assert_error_body


@pytest.fixture
def history(service: Service, accepted_images: list[bytes]) -> list[dict]:
    """Four predictions: three by API key (api), one through the web door."""
    made = [service.predict(data).json() for data in accepted_images[:3]]
    made.append(service.predict(accepted_images[3], source="web").json())
    return made


def _list(service: Service, role: str = "clinician", **params) -> dict:
    response = service.client.get(f"{API}/predictions", params=params, headers=service.key(role))
    assert response.status_code == 200, response.text
    return response.json()


def test_list_is_newest_first_and_paginated(service: Service, history: list[dict]) -> None:
    page = _list(service, limit=3)
    assert page["total"] == 4 and len(page["items"]) == 3
    assert [p["id"] for p in page["items"]] == [p["id"] for p in reversed(history)][:3]
    rest = _list(service, limit=3, offset=3)
    assert [p["id"] for p in rest["items"]] == [history[0]["id"]]


def test_filters(service: Service, history: list[dict]) -> None:
    assert {p["id"] for p in _list(service, source="web")["items"]} == {history[3]["id"]}
    for label in ("normal", "pneumonia"):
        expected = {p["id"] for p in history if p["label"] == label}
        assert {p["id"] for p in _list(service, label=label)["items"]} == expected
    for refer in (True, False):
        expected = {p["id"] for p in history if p["refer"] is refer}
        assert {p["id"] for p in _list(service, refer=str(refer).lower())["items"]} == expected
    now = datetime.now(UTC)
    assert _list(service, since=(now - timedelta(hours=1)).isoformat())["total"] == 4
    assert _list(service, until=(now - timedelta(hours=1)).isoformat())["total"] == 0
    assert _list(service, since="2199-01-01T00:00:00")["total"] == 0  # naive means UTC
    model = history[0]["model"]
    assert _list(service, model=model["model_id"])["total"] == 4
    assert _list(service, model=model["sha256"][:12])["total"] == 4
    assert _list(service, model="other-model:9")["total"] == 0


def test_bad_filters_are_422(service: Service) -> None:
    for params in (
        {"label": "maybe"},
        {"limit": 0},
        {"limit": 10_000},
        {"since": "yesterday"},
        {"since": "0001-01-01T00:00:00+14:00"},
        {"model": "x\x00y"},
        {"offset": -1},
    ):
        response = service.client.get(f"{API}/predictions", params=params, headers=service.key("auditor"))
        assert_error_body(response, 422, "validation_error")


def test_read_one_and_unknown_ids(service: Service, history: list[dict]) -> None:
    wanted = history[1]
    got = service.client.get(f"{API}/predictions/{wanted['id']}", headers=service.key("admin")).json()
    assert got["id"] == wanted["id"] and got["p_pneumonia"] == wanted["p_pneumonia"]
    assert_error_body(
        service.client.get(f"{API}/predictions/{'f' * 32}", headers=service.key("admin")), 404, "not_found"
    )
    assert_error_body(service.client.get(f"{API}/predictions/not-an-id", headers=service.key("admin")), 422)


def test_a_review_is_recorded_next_to_the_prediction(service: Service, history: list[dict]) -> None:
    target = history[0]
    other = "normal" if target["label"] == "pneumonia" else "pneumonia"
    url = f"{API}/predictions/{target['id']}/review"
    first = service.client.post(url, json={"label": target["label"]}, headers=service.key("clinician"))
    assert first.status_code == 201 and first.json()["agrees"] is True
    second = service.client.post(url, json={"label": other}, headers=service.key("clinician"))
    assert second.status_code == 201 and second.json()["agrees"] is False
    detail = service.client.get(f"{API}/predictions/{target['id']}", headers=service.key("auditor")).json()
    assert [r["label"] for r in detail["reviews"]] == [target["label"], other]  # kept, never overwritten
    assert detail["label"] == target["label"] and detail["p_pneumonia"] == target["p_pneumonia"]
    assert {p["id"] for p in _list(service, reviewed="true")["items"]} == {target["id"]}
    assert _list(service, reviewed="false")["total"] == 3


def test_review_validation(service: Service, history: list[dict]) -> None:
    url = f"{API}/predictions/{history[0]['id']}/review"
    headers = service.key("clinician")
    for body in (
        {"label": "normal", "subtype": "viral"},
        {"label": "sick"},
        {"label": "normal", "note": "x"},
        {},
    ):
        assert_error_body(service.client.post(url, json=body, headers=headers), 422, "validation_error")
    missing = service.client.post(
        f"{API}/predictions/{'a' * 32}/review", json={"label": "normal"}, headers=headers
    )
    assert_error_body(missing, 404, "not_found")
