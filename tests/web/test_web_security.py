"""Sign-in security in the browser: the printed first password only allows choosing a new one; an
administrator for whom CXR_MFA_REQUIRED asks a second factor enrols it from a server-drawn QR code,
then cannot sign in without a code; a replayed code and a reused recovery code are refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect

from .conftest import Server, Shots, running_server


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory, bundled_model_path: Path) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("web-serve-mfa"), bundled_model_path, mfa_required="true"
    ) as running:
        yield running


def _sign_in(page, username: str, password: str, code: str | None = None) -> None:
    """Password first; with ``code``, the code when the page asks for one (as a person would)."""
    form = page.locator("#signin-form")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password", exact=True).fill(password)
    field = form.get_by_label("Authentication code")
    if code is not None and not field.is_visible():
        form.get_by_role("button", name="Sign in").click()
        expect(field).to_be_visible()
        form.get_by_label("Password", exact=True).fill(password)
    if code is not None:
        field.fill(code)
    form.get_by_role("button", name="Sign in").click()


def test_first_password_then_enrolment_then_the_code_is_required(
    new_page, strict_server: Server, shots: Shots
) -> None:
    page = new_page(on=strict_server)
    admin = strict_server.admin_username
    _sign_in(page, admin, strict_server.admin_password)
    expect(page.get_by_role("heading", name="Choose your own password")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()  # nothing else is open yet
    page.locator("#first-password-form").get_by_label("New password").fill("short")
    page.get_by_role("button", name="Set password").click()
    expect(page.locator("#security-message")).to_have_text("The new password needs at least 12 characters.")
    page.locator("#first-password-form").get_by_label("New password").fill("the admin's own password")
    page.get_by_role("button", name="Set password").click()

    # Signed in again with the new password: the role requires a second factor, so enrolment comes next.
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    qr = page.get_by_role("img", name="QR code to add this account to an authenticator app")
    expect(qr).to_be_visible()
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    assert qr.evaluate("(img) => img.naturalWidth") > 100  # the browser decoded a real picture
    shots(page, "60-mfa-enrol")
    totp = pyotp.TOTP(page.locator("#mfa-secret").inner_text().strip())
    page.get_by_label("Code from the app").fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#security-message")).to_contain_text("wrong or was already used")
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Confirm").click()
    codes = page.get_by_test_id("recovery-codes").locator("li")
    expect(codes).to_have_count(10)
    recovery = codes.first.inner_text()
    page.get_by_role("button", name="Continue").click()

    # Back at the sign-in: the password alone is not enough any more.
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    _sign_in(page, admin, "the admin's own password")
    expect(page.locator("#signin-message")).to_contain_text("Enter the code from your authenticator app")
    expect(page.get_by_label("Authentication code")).to_be_focused()
    code = totp.at(time.time() + 30)  # the next step's code: the current one was spent on confirming
    _sign_in(page, admin, "the admin's own password", code)
    expect(page.locator("#account-name")).to_have_text(admin)
    expect(page.get_by_role("heading", name="Users and API keys", level=1)).to_be_visible()
    expect(page.get_by_role("button", name="Two-step sign-in")).to_be_hidden()  # enrolled already
    page.get_by_role("button", name="Sign out").click()

    _sign_in(page, admin, "the admin's own password", code)  # the same code again: replayed
    expect(page.locator("#signin-message")).to_contain_text("wrong or was already used")
    _sign_in(page, admin, "the admin's own password", recovery)
    expect(page.locator("#account-name")).to_have_text(admin)
    page.get_by_role("button", name="Sign out").click()
    _sign_in(page, admin, "the admin's own password", recovery)  # a recovery code is good once
    expect(page.locator("#signin-message")).to_contain_text("wrong or was already used")
    shots(page, "61-mfa-code-refused")
