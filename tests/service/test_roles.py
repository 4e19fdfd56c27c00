"""Every protected route: 401 without a credential, 403 with the wrong role, through for the right one."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cxr_pneumonia.store.db.models import AuditEvent

from .conftest import API, Service, assert_error_body

PUBLIC = {
    ("GET", f"{API}/health/live"),
    ("GET", f"{API}/health/ready"),
    ("GET", f"{API}/metrics"),
    ("POST", f"{API}/auth/token"),
    ("POST", f"{API}/auth/refresh"),  # the refresh token is the credential
    ("POST", f"{API}/auth/logout"),
}
ANY_ROLE = "any"
# Written out here (not derived from the code) so that moving a route to another permission fails a test.
REQUIRED = {
    ("POST", f"{API}/predict"): "predict",
    ("POST", f"{API}/predict/batch"): "predict",
    ("GET", f"{API}/predictions"): "read_history",
    ("GET", f"{API}/predictions/{{prediction_id}}"): "read_history",
    ("GET", f"{API}/predictions/{{prediction_id}}/heatmap.png"): "read_history",
    ("GET", f"{API}/predictions/{{prediction_id}}/heatmap-grey.png"): "read_history",
    ("GET", f"{API}/predictions/{{prediction_id}}/image.png"): "read_history",
    ("GET", f"{API}/predictions/{{prediction_id}}/overlay.png"): "read_history",
    ("GET", f"{API}/predictions/{{prediction_id}}/fhir"): "read_history",
    ("POST", f"{API}/predictions/{{prediction_id}}/review"): "review",
    ("POST", "/dicomweb/studies"): "predict",  # STOW-RS: the same credentials as /predict
    ("GET", f"{API}/users"): "manage",
    ("POST", f"{API}/users"): "manage",
    ("POST", f"{API}/users/{{username}}/disable"): "manage",
    ("POST", f"{API}/users/{{username}}/enable"): "manage",
    ("GET", f"{API}/keys"): "manage",
    ("POST", f"{API}/keys"): "manage",
    ("DELETE", f"{API}/keys/{{key_id}}"): "manage",
    ("GET", f"{API}/audit"): "read_audit",
    ("GET", f"{API}/audit/verify"): "read_audit",
    ("GET", f"{API}/monitoring"): "read_audit",  # admin and auditor: drift, alarms, reviewed performance
    ("GET", f"{API}/models/current"): "read_model",
    ("GET", f"{API}/models"): "read_model",
    ("GET", f"{API}/models/{{model_id}}/card"): "read_model",
    ("GET", f"{API}/models/compare"): "read_history",
    ("POST", f"{API}/admin/models/reload"): "manage",
    ("POST", f"{API}/admin/jobs"): "manage",
    ("GET", f"{API}/admin/jobs"): "manage",
    ("GET", f"{API}/admin/jobs/{{job_id}}"): "manage",
    ("GET", f"{API}/auth/me"): ANY_ROLE,
    ("POST", f"{API}/auth/password"): ANY_ROLE,
    ("GET", f"{API}/auth/mfa"): ANY_ROLE,
    ("POST", f"{API}/auth/mfa/totp"): ANY_ROLE,
    ("POST", f"{API}/auth/mfa/totp/confirm"): ANY_ROLE,
}
# The roles: admin (users, keys, models; reads history and audit), clinician (predict, history,
# review), auditor (read-only history and audit trail), integration (predict only).
GRANTS = {
    "admin": {"manage", "read_history", "read_audit", "read_model"},
    "clinician": {"predict", "read_history", "review", "read_model"},
    "auditor": {"read_history", "read_audit", "read_model"},
    "integration": {"predict", "read_model"},
}
PATH_VALUES = {
    "prediction_id": "0" * 32,
    "username": "someone",
    "key_id": "0" * 12,
    "model_id": "0" * 12,
    "job_id": "0" * 32,
}


def _routes(service: Service) -> set[tuple[str, str]]:
    paths = service.app.openapi()["paths"]
    return {(method.upper(), path) for path, operations in paths.items() for method in operations}


def _url(path: str) -> str:
    return path.format(**PATH_VALUES)


def test_every_api_route_is_classified(service: Service) -> None:
    assert _routes(service) == set(REQUIRED) | PUBLIC


@pytest.mark.parametrize(("method", "path"), sorted(REQUIRED))
def test_no_credential_is_401(service: Service, method: str, path: str) -> None:
    assert_error_body(service.client.request(method, _url(path)), 401, "unauthorized")


@pytest.mark.parametrize("role", sorted(GRANTS))
def test_each_role_gets_exactly_its_routes(service: Service, role: str) -> None:
    headers = service.key(role)
    for (method, path), permission in sorted(REQUIRED.items()):
        response = service.client.request(method, _url(path), headers=headers)
        if permission == ANY_ROLE or permission in GRANTS[role]:
            assert response.status_code not in (401, 403), (role, method, path, response.text)
        else:
            body = assert_error_body(response, 403, "forbidden")
            assert permission in body["detail"]
    with service.store.reading() as session:
        denials = session.scalars(select(AuditEvent).where(AuditEvent.action == "authorize")).all()
    expected = sum(1 for p in REQUIRED.values() if p != ANY_ROLE and p not in GRANTS[role])
    assert len(denials) == expected and all(e.outcome == "denied" for e in denials)


def test_private_metrics_need_an_admin_or_auditor(make_service) -> None:
    service = make_service(metrics_public=False)
    assert_error_body(service.client.get(f"{API}/metrics"), 401)
    assert_error_body(service.client.get(f"{API}/metrics", headers=service.key("clinician")), 403)
    assert service.client.get(f"{API}/metrics", headers=service.key("auditor")).status_code == 200
    assert service.client.get("/metrics", headers=service.key("admin")).status_code == 200
