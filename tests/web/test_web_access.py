"""Signing in and its failures in words, API keys, a session that ends, the keyboard, and a phone screen."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import PHONE, Chest, Server, Shots
from .steps import assert_in_words, assert_shows, go, no_horizontal_scroll, result, sign_in, sign_out, upload


def test_a_wrong_password_is_explained(new_page, server: Server, shots: Shots) -> None:
    page = new_page()
    form = page.locator("#signin-form")
    form.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-message")).to_have_text("Enter your username and password.")
    form.get_by_label("Username").fill(server.admin_username)
    form.get_by_label("Password").fill("not the password")
    form.get_by_role("button", name="Sign in").click()
    message = page.locator("#signin-message")
    expect(message).to_have_text("Wrong username or password, or the account is disabled.")
    expect(message).to_have_attribute("role", "alert")
    expect(form.get_by_label("Password")).to_be_focused()
    expect(form.get_by_label("Password")).to_have_value("")
    assert_in_words(message)
    shots(page, "50-wrong-password")


def test_an_api_key_signs_in_with_its_role(new_page, server: Server, shots: Shots) -> None:
    key = server.create_key("integration")
    page = new_page()
    page.get_by_text("Use an API key instead").click()
    page.locator("#apikey-form").get_by_label("API key").fill("cxr_not-a-key")
    page.get_by_role("button", name="Continue with key").click()
    expect(page.locator("#signin-message")).to_contain_text("does not look like an API key")
    page.locator("#apikey-form").get_by_label("API key").fill(key)
    page.get_by_role("button", name="Continue with key").click()
    expect(page.locator("#account-role")).to_have_text("Integration")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Analyse")).to_be_visible()
    expect(nav.get_by_role("link", name="History")).to_be_hidden()  # integrations predict only
    expect(page.get_by_role("button", name="Change password")).to_be_hidden()  # a key has no password
    page.goto(page.url.split("#")[0] + "#/audit")
    expect(page.get_by_role("heading", name="Not available")).to_be_visible()
    expect(page.locator("#notfound-text")).to_contain_text("Integration")
    shots(page, "51-api-key-no-access")
    sign_out(page)


def test_a_disabled_account_is_signed_out_with_a_reason(new_page, server: Server, shots: Shots) -> None:
    username, password = server.create_user("clinician")
    page = new_page()
    sign_in(page, username, password)
    server.set_active(username, False)
    go(page, "History")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.locator("#signin-message")).to_contain_text("Your session has ended")
    shots(page, "52-session-ended")
    server.set_active(username, True)


def test_keyboard_only(new_page, server: Server, shots: Shots, chest: Chest) -> None:
    username, password = server.create_user("clinician")
    page = new_page()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.locator("#signin-form").get_by_label("Username").focus()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Analyse chest X-rays")).to_be_focused()
    # The drop zone is reached by Tab (its file input), and its focus is drawn.
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "file-input":
            break
    expect(page.locator("#file-input")).to_be_focused()
    outline = page.locator("#dropzone").evaluate("(zone) => getComputedStyle(zone).outlineStyle")
    assert outline == "solid"
    shots(page, "53-keyboard-focus-dropzone")
    upload(page, chest.path)
    article = result(page)
    page.keyboard.press("Tab")  # from the focused verdict onwards through the result
    switch = article.get_by_role("switch", name="Heatmap")
    switch.focus()
    was_on = switch.is_checked()
    page.keyboard.press("Space")
    expect(switch).to_be_checked(checked=not was_on)
    page.keyboard.press("Tab")
    slider = article.get_by_role("slider", name="Opacity")
    if was_on:
        expect(slider).to_be_disabled()  # a hidden heatmap has no opacity to set: the slider is skipped
    else:
        expect(slider).to_be_focused()
    shots(page, "54-keyboard-heatmap-toggled")


def test_phone_width(new_page, server: Server, shots: Shots, chest: Chest) -> None:
    username, password = server.create_user("clinician")
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    no_horizontal_scroll(page)
    shots(page, "60-phone-sign-in")
    sign_in(page, username, password)
    no_horizontal_scroll(page)
    shots(page, "61-phone-analyse")
    upload(page, chest.path)
    article = result(page)
    assert_shows(article, chest.prediction)
    stage = article.locator("[data-testid=stage]").bounding_box()
    assert stage is not None and stage["width"] >= PHONE["width"] - 60  # the radiograph uses the width
    no_horizontal_scroll(page)
    shots(page, "62-phone-result")
    go(page, "History")
    expect(page.locator("#history-table tbody tr").first).to_be_visible()
    no_horizontal_scroll(page)
    shots(page, "63-phone-history")


def test_the_session_warns_then_ends_at_its_time_limit(new_page, server: Server, shots: Shots) -> None:
    """A shared ward PC: two minutes before the token's end a warning, at the end the page signs out."""
    username, password = server.create_user("clinician")
    page = new_page()
    page.clock.install()
    sign_in(page, username, password)
    page.clock.fast_forward("28:30")  # tokens last 30 minutes (CXR_TOKEN_MINUTES)
    expect(page.locator("#flash")).to_contain_text("Your session ends in 2 minutes")
    shots(page, "55-session-ending-warning")
    page.clock.fast_forward("02:00")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.locator("#signin-message")).to_contain_text("Your session has ended after its time limit")
    expect(page.locator("#flash")).to_be_hidden()


def test_a_user_changes_their_password(new_page, server: Server, shots: Shots) -> None:
    username, password = server.create_user("clinician")
    page = new_page()
    sign_in(page, username, password)
    page.get_by_role("button", name="Change password").click()
    dialog = page.get_by_role("dialog", name="Change your password")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Current password").fill("not my password")
    dialog.get_by_label("New password").fill("short")
    dialog.get_by_role("button", name="Change password").click()
    expect(dialog.get_by_role("alert")).to_have_text("The new password needs at least 12 characters.")
    dialog.get_by_label("New password").fill("a-new-and-longer-password")
    dialog.get_by_role("button", name="Change password").click()
    expect(dialog.get_by_role("alert")).to_contain_text("The current password is wrong.")
    assert_in_words(dialog.get_by_role("alert"))
    shots(page, "56-password-wrong-current")
    dialog.get_by_label("Current password").fill(password)
    dialog.get_by_role("button", name="Change password").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#flash")).to_have_text("Your password was changed.")
    sign_out(page)
    sign_in(page, username, "a-new-and-longer-password")
