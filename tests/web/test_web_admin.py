"""First start: the administrator signs in with the printed one-time login and sets up accounts and keys."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from .conftest import API, Server, Shots
from .steps import assert_controls_labelled, assert_in_words, go, sign_in, sign_out


def test_first_run_admin_creates_a_clinician_and_an_api_key(new_page, server: Server, shots: Shots) -> None:
    page = new_page()
    shots(page, "00-sign-in")
    sign_in(page, server.admin_username, server.admin_password)
    expect(page.get_by_role("heading", name="Users and API keys", level=1)).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Analyse")).to_be_hidden()  # administrators do not read images
    expect(nav.get_by_role("link", name="Audit trail")).to_be_visible()
    users = page.locator("#users-table")
    expect(users.locator("tr[data-username=admin]")).to_contain_text("(you)")
    expect(
        users.locator("tr[data-username=admin]").get_by_role("button", name="Disable admin")
    ).to_be_disabled()

    # A clinician with a generated password, shown once.
    form = page.locator("#user-form")
    form.get_by_label("Username").fill("dr.house")
    form.get_by_label("Role").select_option("clinician")
    form.get_by_role("button", name="Create user").click()
    secret = page.locator("#user-secret")
    expect(secret).to_contain_text("only time the password is shown")
    password = page.get_by_test_id("new-password").input_value()
    assert len(password) >= 12
    expect(users.locator("tr[data-username='dr.house']")).to_contain_text("Clinician")
    expect(users.locator("tr[data-username='dr.house']")).to_contain_text("Active")
    shots(page, "01-admin-user-created")
    secret.get_by_role("button", name="I have saved it — hide").click()
    expect(page.get_by_test_id("new-password")).to_have_count(0)

    # A bad username is explained next to the form, not sent.
    form.get_by_label("Username").fill("no spaces allowed")
    form.get_by_role("button", name="Create user").click()
    assert "starts with a letter or digit" in assert_in_words(page.locator("#admin-error"))
    expect(form.get_by_label("Username")).to_have_attribute("aria-invalid", "true")
    form.get_by_label("Username").fill("")

    # An API key for a PACS router: shown once, works, then revoked.
    keys = page.locator("#key-form")
    keys.get_by_label("Key name").fill("PACS router ward 3")
    keys.get_by_label("Role").select_option("integration")
    keys.get_by_role("button", name="Create key").click()
    api_key = page.get_by_test_id("new-api-key").input_value()
    assert re.fullmatch(r"cxr_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", api_key)
    key_row = page.locator("#keys-table tr", has_text="PACS router ward 3")
    expect(key_row).to_contain_text("Integration")
    expect(key_row).to_contain_text("Active")
    assert_controls_labelled(page)
    shots(page, "02-admin-key-created")
    assert httpx.get(f"{server.url}{API}/auth/me", headers={"X-API-Key": api_key}).status_code == 200

    key_row.get_by_role("button", name="Revoke key PACS router ward 3").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("stops working at once")
    dialog.get_by_role("button", name="Revoke key").click()
    expect(key_row).to_contain_text("Revoked")
    assert httpx.get(f"{server.url}{API}/auth/me", headers={"X-API-Key": api_key}).status_code == 401
    shots(page, "03-admin-key-revoked")

    # Disable and enable the new user (asked first).
    row = users.locator("tr[data-username='dr.house']")
    row.get_by_role("button", name="Disable dr.house").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(row).to_contain_text("Active")
    row.get_by_role("button", name="Disable dr.house").click()
    page.get_by_role("dialog").get_by_role("button", name="Disable user").click()
    expect(row).to_contain_text("Disabled")
    row.get_by_role("button", name="Enable dr.house").click()
    expect(row).to_contain_text("Active")

    # The history is readable by an administrator; then sign out, and the new clinician signs in.
    go(page, "History")
    expect(page.get_by_role("heading", name="History", level=1)).to_be_visible()
    sign_out(page)
    sign_in(page, "dr.house", password)
    expect(page.get_by_role("heading", name="Analyse chest X-rays")).to_be_visible()
    expect(page.locator("#account-role")).to_have_text("Clinician")
    shots(page, "04-new-clinician-signed-in")
