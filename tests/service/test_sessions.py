"""The first-run password allows only setting a new one; refresh tokens rotate (a reused one revokes
its family); signing out revokes; `cxr secrets rotate-jwt` keeps earlier tokens verifying."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from cxr_pneumonia.cli import app as cli_app
from cxr_pneumonia.config import get_settings
from cxr_pneumonia.store.bootstrap import ensure_admin
from cxr_pneumonia.store.jwt_keys import rotate

from .conftest import API, Service, assert_error_body


def _pair(service: Service, username: str, password: str = "correct horse battery") -> dict[str, str]:
    response = service.client.post(f"{API}/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def _bearer(pair: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def test_the_printed_first_password_only_allows_setting_a_new_one(service: Service) -> None:
    first = ensure_admin(service.store, "test")
    assert first is not None
    pair = _pair(service, first.username, first.password)
    assert pair["restriction"] == "password_change" and pair["refresh_token"] is None
    for method, path in (("GET", "/users"), ("POST", "/keys"), ("GET", "/audit"), ("POST", "/auth/mfa/totp")):
        answer = service.client.request(method, f"{API}{path}", headers=_bearer(pair), json={"name": "k"})
        assert_error_body(answer, 403, "password_change_required")
    assert service.client.get(f"{API}/auth/me", headers=_bearer(pair)).status_code == 200
    change = {"current_password": first.password, "new_password": "my own long password"}
    assert service.client.post(f"{API}/auth/password", json=change, headers=_bearer(pair)).status_code == 204
    full = _pair(service, first.username, "my own long password")
    assert full["restriction"] is None
    assert service.client.get(f"{API}/users", headers=_bearer(full)).status_code == 200


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_family(service: Service) -> None:
    service.user("dr.ada", "clinician")
    first = _pair(service, "dr.ada")
    second = service.client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second_pair = second.json()
    assert second_pair["refresh_token"] != first["refresh_token"]
    assert service.client.get(f"{API}/auth/me", headers=_bearer(second_pair)).status_code == 200

    replay = service.client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_error_body(replay, 401, "unauthorized")  # a used token came back: someone copied it
    after = service.client.post(f"{API}/auth/refresh", json={"refresh_token": second_pair["refresh_token"]})
    assert_error_body(after, 401, "unauthorized")  # ... so the whole family is revoked
    assert_error_body(service.client.get(f"{API}/auth/me", headers=_bearer(second_pair)), 401)
    other = _pair(service, "dr.ada")  # a new sign-in is a new family
    assert service.client.get(f"{API}/auth/me", headers=_bearer(other)).status_code == 200


def test_sign_out_revokes(service: Service) -> None:
    service.user("dr.bo", "clinician")
    pair = _pair(service, "dr.bo")
    answer = service.client.post(f"{API}/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert answer.status_code == 204
    assert_error_body(service.client.get(f"{API}/auth/me", headers=_bearer(pair)), 401)
    again = service.client.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_error_body(again, 401)
    bogus = service.client.post(f"{API}/auth/logout", json={"refresh_token": "cxr_rt_" + "0" * 32 + "_x"})
    assert_error_body(bogus, 401)


def _rotate(service: Service, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CXR_DATA_DIR", str(Path(service.settings.data_dir)))
    for name in ("CXR_DATABASE_URL", "CXR_JWT_SECRET", "CXR_IMAGE_KEY", "CXR_IMAGE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["secrets", "rotate-jwt"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output.split()[4].rstrip(";")


def test_rotating_the_jwt_key_keeps_earlier_tokens_verifying(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.user("dr.cy", "clinician")
    before = _pair(service, "dr.cy")
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    new_kid = _rotate(service, monkeypatch)
    assert new_kid != old_kid
    service.app.state.cxr.tokens.keyring.reload()  # what every replica does within 30 s
    after = _pair(service, "dr.cy")
    assert jwt.get_unverified_header(after["access_token"])["kid"] == new_kid
    for pair in (before, after):  # the old key still verifies until its tokens have expired
        assert service.client.get(f"{API}/auth/me", headers=_bearer(pair)).status_code == 200


def test_a_retired_key_no_longer_verifies(service: Service) -> None:
    service.user("dr.di", "clinician")
    before = _pair(service, "dr.di")
    with service.store.transaction() as session:  # as if its grace period were over
        rotate(session, service.store.cipher, timedelta(seconds=-1))
    service.app.state.cxr.tokens.keyring.reload()
    assert_error_body(service.client.get(f"{API}/auth/me", headers=_bearer(before)), 401)
    assert service.client.get(f"{API}/auth/me", headers=_bearer(_pair(service, "dr.di"))).status_code == 200
