"""An auditor reads the audit trail: filters, paging, the chain check and the CSV export."""

from __future__ import annotations

import csv
import io

from playwright.sync_api import expect

from .conftest import Server, Shots
from .steps import assert_controls_labelled, sign_in


def test_auditor_filters_the_audit_trail_and_exports_csv(new_page, server: Server, shots: Shots) -> None:
    username, password = server.create_user("auditor")
    page = new_page()
    sign_in(page, username, password)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Analyse")).to_be_hidden()
    expect(nav.get_by_role("link", name="Users & keys")).to_be_hidden()
    expect(page.get_by_role("heading", name="History", level=1)).to_be_visible()  # an auditor's first page

    nav.get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", name="Audit trail", level=1)).to_be_visible()
    table = page.locator("#audit-table tbody")
    expect(table.locator("tr").first).to_be_visible()
    expect(page.locator("#audit-summary")).to_contain_text("the latest are at the bottom")

    # Only sign-ins, and only successful ones.
    filters = page.get_by_role("form", name="Filter the audit trail")
    filters.get_by_label("Action").select_option("login")
    filters.get_by_label("Outcome").select_option("ok")
    filters.get_by_role("button", name="Apply filters").click()
    expect(table.locator("tr[data-seq]", has_not_text="Sign in")).to_have_count(0)
    expect(table.locator("tr[data-seq]").first).to_be_visible()
    for row in table.locator("tr[data-seq]").all():
        expect(row.locator("td[data-label=Action]")).to_contain_text("Sign in")
        expect(row.locator("td[data-label=Outcome]")).to_have_text("OK")
    expect(table.locator("tr", has_text=f"user:{username}")).not_to_have_count(0)
    shown = table.locator("tr[data-seq]").count()
    assert_controls_labelled(page)
    shots(page, "40-auditor-audit-filtered")

    # The chain is intact.
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.locator("#audit-verify-result")).to_contain_text("The audit chain is intact")

    # The CSV export follows the same filters.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("cxr-audit-") and download.suggested_filename.endswith(
        ".csv"
    )
    rows = list(csv.DictReader(io.StringIO(download.path().read_text())))
    assert (
        rows and {row["action"] for row in rows} == {"login"} and {row["outcome"] for row in rows} == {"ok"}
    )
    assert len(rows) >= shown
    assert list(rows[0])[:5] == ["seq", "created_at", "actor", "action", "outcome"]
    shots(page, "41-auditor-csv-exported")

    # One person's actions: a bare username means that user.
    filters.get_by_label("Action").select_option("")
    filters.get_by_label("Outcome").select_option("")
    filters.get_by_label("Actor").fill(username)
    filters.get_by_role("button", name="Apply filters").click()
    expect(table.locator("tr[data-seq]", has_not_text=f"user:{username}")).to_have_count(0)
    expect(table.locator("tr[data-seq]", has_text="Read audit trail").first).to_be_visible()

    # Clearing the filters opens on the latest events again: this auditor reading the trail is among them.
    filters.get_by_role("button", name="Clear").click()
    expect(
        table.locator("tr", has_text=f"user:{username}").filter(has_text="Read audit trail").first
    ).to_be_visible()
    if page.get_by_role("button", name="← Earlier").is_enabled():
        page.get_by_role("button", name="← Earlier").click()
        expect(page.locator("#audit-summary")).not_to_contain_text("the latest are at the bottom")
