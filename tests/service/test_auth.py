"""Logins, tokens, API keys and accounts."""

from __future__ import annotations

import stat

from sqlalchemy import select

from cxr_pneumonia.service.security.tokens import FixedKeyring, TokenIssuer
from cxr_pneumonia.store.db.models import ApiKey, AuditEvent, JwtKey, User
from cxr_pneumonia.store.jwt_keys import SigningKey

from .conftest import API, Service, assert_error_body


def _events(service: Service, action: str) -> list[AuditEvent]:
    with service.store.reading() as session:
        return list(
            session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
        )


def test_login_gives_a_short_lived_token(service: Service) -> None:
    headers = service.user("dr.ada", "clinician")
    me = service.client.get(f"{API}/auth/me", headers=headers).json()
    assert (me["kind"], me["name"], me["role"]) == ("user", "dr.ada", "clinician")
    assert "predict" in me["permissions"] and "manage" not in me["permissions"]
    [event] = _events(service, "login")
    assert (event.actor, event.outcome) == ("user:dr.ada", "ok")


def test_wrong_password_and_unknown_user_are_401_and_audited(service: Service) -> None:
    service.user("dr.bob", "clinician")
    for username in ("dr.bob", "nobody"):
        response = service.client.post(
            f"{API}/auth/token", data={"username": username, "password": "wrong password"}
        )
        assert_error_body(response, 401, "unauthorized")
        assert "Bearer" in response.headers["www-authenticate"]
    denied = [e for e in _events(service, "login") if e.outcome == "denied"]
    assert [(e.actor, e.detail["reason"]) for e in denied] == [
        ("user:dr.bob", "wrong password or disabled"),
        ("anonymous", "unknown user"),
    ]


def test_bad_and_expired_tokens_are_401(service: Service) -> None:
    service.user("dr.cy", "clinician")
    expired = TokenIssuer(service.app.state.cxr.tokens.keyring, minutes=-1).issue(1, "dr.cy")
    ours = service.app.state.cxr.tokens.keyring.signing()
    foreign = TokenIssuer(FixedKeyring(SigningKey(ours.kid, b"x" * 40)), minutes=30).issue(1, "dr.cy")
    for token in ("garbage", expired, foreign, "a" * 5000):
        response = service.client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert_error_body(response, 401, "unauthorized")
    assert all(e.outcome == "denied" for e in _events(service, "authenticate"))


def test_passwords_are_argon2_hashes_and_the_jwt_keys_are_sealed(service: Service) -> None:
    service.user("dr.dee", "clinician", password="a long enough secret")
    with service.store.reading() as session:
        stored = session.scalars(select(User.password_hash).where(User.username == "dr.dee")).one()
    assert stored.startswith("$argon2id$") and "a long enough secret" not in stored
    secret = service.app.state.cxr.tokens.keyring.signing().secret
    with service.store.reading() as session:
        [row] = session.scalars(select(JwtKey)).all()
    assert secret not in row.ciphertext and len(secret) >= 32  # AES-GCM sealed with the store's key
    key_file = service.settings.data_dir / "image.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_disabling_a_user_stops_their_token_at_once(service: Service) -> None:
    admin = service.user("root", "admin")
    clinician = service.user("dr.eve", "clinician")
    assert service.client.get(f"{API}/auth/me", headers=clinician).status_code == 200
    response = service.client.post(f"{API}/users/dr.eve/disable", headers=admin)
    assert response.status_code == 200 and response.json()["active"] is False
    assert_error_body(service.client.get(f"{API}/auth/me", headers=clinician), 401)
    login = service.client.post(
        f"{API}/auth/token", data={"username": "dr.eve", "password": "correct horse battery"}
    )
    assert_error_body(login, 401)
    # The last active admin cannot be disabled (nobody could manage accounts any more).
    assert_error_body(service.client.post(f"{API}/users/root/disable", headers=admin), 409, "last_admin")


def test_admin_creates_users_with_a_generated_password_shown_once(service: Service) -> None:
    admin = service.user("root", "admin")
    created = service.client.post(
        f"{API}/users", json={"username": "dr.fay", "role": "clinician"}, headers=admin
    )
    assert created.status_code == 201
    password = created.json()["password"]
    assert len(password) >= 16
    login = service.client.post(f"{API}/auth/token", data={"username": "dr.fay", "password": password})
    assert login.status_code == 200
    listed = service.client.get(f"{API}/users", headers=admin).json()
    assert {u["username"] for u in listed} == {"root", "dr.fay"}
    assert "password" not in str(listed)
    again = service.client.post(f"{API}/users", json={"username": "dr.fay", "role": "auditor"}, headers=admin)
    assert_error_body(again, 409, "conflict")
    extra = service.client.post(
        f"{API}/users", json={"username": "x", "role": "admin", "is_root": True}, headers=admin
    )
    assert_error_body(extra, 422, "validation_error")


def test_api_keys_are_shown_once_stored_as_hashes_and_revocable(service: Service) -> None:
    admin = service.user("root", "admin")
    created = service.client.post(f"{API}/keys", json={"name": "dicom-node"}, headers=admin)
    assert created.status_code == 201
    body = created.json()
    token, key_id = body["api_key"], body["key"]["id"]
    assert body["key"]["role"] == "integration" and token.startswith(f"cxr_{key_id}_")
    with service.store.reading() as session:
        row = session.get(ApiKey, key_id)
        assert row is not None and token.split("_", 2)[2] not in (row.secret_sha256, row.name)
    me = service.client.get(f"{API}/auth/me", headers={"X-API-Key": token}).json()
    assert (me["kind"], me["role"]) == ("key", "integration")
    listed = service.client.get(f"{API}/keys", headers=admin).json()
    assert token not in str(listed)
    revoked = service.client.delete(f"{API}/keys/{key_id}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert_error_body(service.client.get(f"{API}/auth/me", headers={"X-API-Key": token}), 401)
    wrong_secret = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert_error_body(service.client.get(f"{API}/auth/me", headers={"X-API-Key": wrong_secret}), 401)


def test_changing_the_password(service: Service) -> None:
    headers = service.user("dr.gil", "clinician", password="first password!")
    wrong = service.client.post(
        f"{API}/auth/password",
        headers=headers,
        json={"current_password": "nope", "new_password": "second password!"},
    )
    assert_error_body(wrong, 400, "wrong_password")
    ok = service.client.post(
        f"{API}/auth/password",
        headers=headers,
        json={"current_password": "first password!", "new_password": "second password!"},
    )
    assert ok.status_code == 204
    old = service.client.post(f"{API}/auth/token", data={"username": "dr.gil", "password": "first password!"})
    new = service.client.post(
        f"{API}/auth/token", data={"username": "dr.gil", "password": "second password!"}
    )
    assert (old.status_code, new.status_code) == (401, 200)
    keyed = service.client.post(
        f"{API}/auth/password",
        headers=service.key("clinician"),
        json={"current_password": "x", "new_password": "second password!"},
    )
    assert_error_body(keyed, 400)
