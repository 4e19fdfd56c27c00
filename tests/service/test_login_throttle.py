"""Sign-in throttling is per account and per (account, address): an attacker hammering `admin` from a
hospital's one NAT address does not stop `drsmith` there from signing in."""

from __future__ import annotations

import json
from typing import Any

from cxr_pneumonia.service.deps import RequestContext
from cxr_pneumonia.store import accounts
from cxr_pneumonia.store.db.models import AuditEvent
from cxr_pneumonia.store.security.roles import Role

from .conftest import API, Service, assert_error_body


def _login(service: Service, username: str, password: str) -> Any:
    return service.client.post(f"{API}/auth/token", data={"username": username, "password": password})


def _create(service: Service, username: str, role: str, password: str) -> None:
    with service.store.transaction() as session:
        accounts.create_user(session, username, Role(role), password, created_by="test")


def test_hammering_admin_does_not_lock_out_drsmith_at_the_same_address(make_service) -> None:
    service = make_service(rate_limit_anonymous="30/minute", login_backoff_initial_seconds=60)
    _create(service, "admin2", "admin", "the admin's real password")
    _create(service, "drsmith", "clinician", "correct horse battery")
    codes = [_login(service, "admin2", f"guess-{i}").status_code for i in range(40)]
    assert codes[:6] == [401] * 6 and set(codes[6:]) == {429}  # 5 free failures, the 6th locks
    locked = _login(service, "admin2", "the admin's real password")
    assert_error_body(locked, 429, "rate_limited")  # the lock holds even for the right password
    assert int(locked.headers["retry-after"]) >= 1
    assert _login(service, "drsmith", "correct horse battery").status_code == 200
    assert _login(service, "drsmith", "a typo").status_code == 401  # and drsmith's own failures count alone


def test_each_lock_doubles_the_last_and_every_lock_is_audited(make_service) -> None:
    service = make_service(login_free_failures=2, login_backoff_initial_seconds=10)
    throttle = service.app.state.cxr.login_throttle
    caller = RequestContext(request_id="r1", client="10.0.0.7", route="POST /auth/token")
    for _ in range(5):  # counted directly: through the route, the lock would refuse before counting
        throttle.failed("drsmith", caller)
    with service.store.reading() as session:
        events = session.query(AuditEvent).filter(AuditEvent.action == "login_lockout").all()
        details = [e.detail if isinstance(e.detail, dict) else json.loads(e.detail) for e in events]
    pair = [d["locked_seconds"] for d in details if d["scope"] == "account_address"]
    assert pair == [10, 20, 40]
    assert all(e.client == "10.0.0.7" and e.actor == "user:drsmith" for e in events)
