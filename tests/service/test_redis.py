"""Rate limits and the result cache shared through Redis (CXR_TEST_REDIS_URL; `.ci/services.sh`)."""

from __future__ import annotations

import uuid

import pytest

from .conftest import API, Service, assert_error_body


@pytest.fixture
def replicas(make_service, redis_url: str, tmp_path) -> tuple[Service, Service]:
    """Two apps on one database and one Redis, as two replicas behind a load balancer would be."""
    shared = {
        "redis_url": redis_url,
        "redis_prefix": f"cxr-test-{uuid.uuid4().hex[:8]}",
        "data_dir": tmp_path / "shared",
        "rate_limit": "3/minute",
        "rate_limit_client": "5/minute",
    }
    return make_service(own_predictor=True, **shared), make_service(own_predictor=True, **shared)


@pytest.mark.redis
def test_replicas_share_the_credential_limit(replicas: tuple[Service, Service]) -> None:
    a, b = replicas
    headers = a.key("clinician")  # one database: the key works on both
    codes = [service.client.get(f"{API}/auth/me", headers=headers).status_code for service in (a, b, a, b)]
    assert codes == [200, 200, 200, 429]
    assert_error_body(b.client.get(f"{API}/auth/me", headers=headers), 429, "rate_limited")


@pytest.mark.redis
def test_replicas_share_the_client_address_limit(replicas: tuple[Service, Service]) -> None:
    a, b = replicas
    roles = ["admin", "auditor", "integration", "clinician", "admin", "auditor"]
    codes = [
        (a if i % 2 else b).client.get(f"{API}/auth/me", headers=a.key(role)).status_code
        for i, role in enumerate(roles)
    ]
    assert codes == [200, 200, 200, 200, 200, 429]


@pytest.mark.redis
def test_replicas_share_the_result_cache(replicas: tuple[Service, Service], chest_jpeg: bytes) -> None:
    a, b = replicas
    first = a.predict(chest_jpeg, headers=a.key("clinician"))
    second = b.predict(chest_jpeg, headers=a.key("integration"))
    assert first.status_code == second.status_code == 200
    assert first.json()["cached"] is False and second.json()["cached"] is True
    assert second.json()["p_pneumonia"] == first.json()["p_pneumonia"]
    assert first.json()["id"] != second.json()["id"]  # both requests are recorded


def test_an_unreachable_redis_fails_limits_closed_and_the_cache_open(make_service, chest_jpeg: bytes) -> None:
    service = make_service(own_predictor=True, redis_url="redis://127.0.0.1:9/0")  # nothing listens on port 9
    response = service.client.get(f"{API}/auth/me", headers=service.key("clinician"))
    assert_error_body(response, 503, "rate_limit_unavailable")
    cache = service.app.state.cxr.predictor.cache
    assert cache.get("0" * 64, "0" * 64) is None  # a miss, not an error
