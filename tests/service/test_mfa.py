"""The second factor over the API: enrolment (otpauth URI and QR code), a wrong code, a replayed code,
recovery codes good once, and CXR_MFA_REQUIRED for the admin and auditor roles."""

from __future__ import annotations

import time
from collections.abc import Callable

import pyotp
from sqlalchemy import select

from cxr_pneumonia.store.db.models import RecoveryCode, TotpSecret

from .conftest import API, Service, assert_error_body

PASSWORD = "correct horse battery"


def _login(service: Service, username: str, otp: str | None = None) -> object:
    data = {"username": username, "password": PASSWORD} | ({"otp": otp} if otp else {})
    return service.client.post(f"{API}/auth/token", data=data)


def _bearer(response: object) -> dict[str, str]:
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {response.json()['access_token']}"}  # type: ignore[attr-defined]


def _enrol(service: Service, headers: dict[str, str]) -> tuple[pyotp.TOTP, list[str]]:
    started = service.client.post(f"{API}/auth/mfa/totp", headers=headers)
    assert started.status_code == 201, started.text
    body = started.json()
    assert (
        body["otpauth_uri"].startswith("otpauth://totp/")
        and f"secret={body['secret']}" in body["otpauth_uri"]
    )
    assert body["qr_svg"].startswith("data:image/svg+xml")
    totp = pyotp.TOTP(body["secret"])
    wrong = service.client.post(f"{API}/auth/mfa/totp/confirm", json={"code": "000000"}, headers=headers)
    assert_error_body(wrong, 400, "mfa_invalid")
    confirmed = service.client.post(
        f"{API}/auth/mfa/totp/confirm", json={"code": totp.now()}, headers=headers
    )
    assert confirmed.status_code == 200, confirmed.text
    return totp, confirmed.json()["recovery_codes"]


def _next_code(totp: pyotp.TOTP) -> str:
    return totp.at(time.time() + 30)  # the next step's code: within the drift window, not yet used


def test_an_enrolled_admin_cannot_sign_in_without_the_code(service: Service) -> None:
    headers = service.user("root", "admin")
    totp, recovery = _enrol(service, headers)
    assert len(recovery) == 10 and len(set(recovery)) == 10

    assert_error_body(_login(service, "root"), 401, "mfa_required")
    assert_error_body(
        _login(service, "root", "123456" if totp.now() != "123456" else "654321"), 401, "mfa_invalid"
    )
    code = _next_code(totp)
    admin = _bearer(_login(service, "root", code))
    assert service.client.get(f"{API}/users", headers=admin).status_code == 200
    assert_error_body(_login(service, "root", code), 401, "mfa_invalid")  # the same code again: replay

    _bearer(_login(service, "root", recovery[0].lower()))  # a recovery code, however it is typed
    assert_error_body(_login(service, "root", recovery[0]), 401, "mfa_invalid")  # good once
    status = service.client.get(f"{API}/auth/mfa", headers=admin).json()
    assert status == {"enrolled": True, "required": False, "recovery_codes_left": 9}
    again = service.client.post(f"{API}/auth/mfa/totp", headers=admin)
    assert_error_body(again, 409, "mfa_enrolled")  # a second enrolment cannot replace the first


def test_secrets_and_recovery_codes_are_not_stored_readable(service: Service) -> None:
    headers = service.user("root", "admin")
    totp, recovery = _enrol(service, headers)
    with service.store.reading() as session:
        [secret] = session.scalars(select(TotpSecret)).all()
        hashes = set(session.scalars(select(RecoveryCode.code_sha256)).all())
    assert totp.secret.encode() not in secret.ciphertext
    assert not hashes & {c for c in recovery} and len(hashes) == 10


def test_mfa_required_for_admin_and_auditor(make_service: Callable[..., Service]) -> None:
    service = make_service(mfa_required=True)
    clinician = service.user("dr.ada", "clinician")  # not a role the setting covers
    assert service.client.get(f"{API}/predictions", headers=clinician).status_code == 200
    for username, role, route in (("root", "admin", "/users"), ("aud", "auditor", "/audit")):
        restricted = service.user(username, role)
        denied = service.client.get(f"{API}{route}", headers=restricted)
        assert_error_body(denied, 403, "mfa_enrolment_required")
        mfa_status = service.client.get(f"{API}/auth/mfa", headers=restricted)
        assert mfa_status.json().get("required") is True, mfa_status.text
        totp, _ = _enrol(service, restricted)  # the restricted token opens enrolment only
        assert_error_body(_login(service, username), 401, "mfa_required")
        full = _bearer(_login(service, username, _next_code(totp)))
        assert service.client.get(f"{API}{route}", headers=full).status_code == 200
