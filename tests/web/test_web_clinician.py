"""A clinician reads a real radiograph: the answer, the heatmap, the history, a review; then signs out."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from playwright.sync_api import expect

from .conftest import Chest, Server, Shots
from .steps import (
    LABEL_WORDS,
    assert_controls_labelled,
    assert_shows,
    go,
    headline,
    heatmap_pixels,
    result,
    sign_in,
    sign_out,
    upload,
)


def test_clinician_reads_a_radiograph_and_reviews_it(
    new_page, server: Server, shots: Shots, chest: Chest
) -> None:
    username, password = server.create_user("clinician")
    page = new_page()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.get_by_role("note", name="Disclaimer")).to_contain_text("Decision support, not a diagnosis")
    sign_in(page, username, password)
    expect(page.get_by_role("heading", name="Analyse chest X-rays")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Analyse")).to_be_visible()
    expect(nav.get_by_role("link", name="Users & keys")).to_be_hidden()  # not a clinician's page
    expect(page.locator("#model-line")).to_contain_text(chest.prediction.model.name)
    shots(page, "10-clinician-analyse")

    # Upload a real Kermany radiograph: the label, the probability bar, the heatmap over the image.
    upload(page, chest.path)
    article = result(page)
    assert_shows(article, chest.prediction)
    expect(page.locator("#queue [data-state=done]")).to_contain_text(LABEL_WORDS[chest.prediction.label])
    radiograph = article.locator("img.radiograph")
    expect(radiograph).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    assert radiograph.evaluate("(img) => img.complete && img.naturalWidth > 0")
    switch = article.get_by_role("switch", name="Heatmap")
    if not switch.is_checked():  # off at first for a normal result
        switch.click()
    drawn = heatmap_pixels(article)
    assert chest.prediction.heatmap is not None
    assert (drawn["height"], drawn["width"]) == chest.prediction.heatmap.shape and drawn["visible"]
    if chest.prediction.heatmap.max() > 0.05:  # a map with no evidence at all is drawn fully transparent
        assert drawn["coloured"] > 0
    assert drawn["opacity"] == "0.55"
    expect(article.locator("[data-testid=verdict]")).to_be_focused()  # the result is announced and focused
    assert_controls_labelled(page)
    shots(page, "11-clinician-result")

    # The opacity slider, by keyboard: End = 100 %, then two steps down.
    slider = article.get_by_role("slider", name="Opacity")
    slider.focus()
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(slider).to_have_value("90")
    expect(article.locator("output")).to_have_text("90%")
    assert heatmap_pixels(article)["opacity"] == "0.9"
    shots(page, "12-clinician-opacity-90")

    # The heatmap off (mouse), then on again (keyboard).
    switch.click()
    expect(switch).not_to_be_checked()
    assert not heatmap_pixels(article)["visible"]
    expect(slider).to_be_disabled()
    shots(page, "13-clinician-heatmap-off")
    switch.focus()
    page.keyboard.press("Space")
    expect(switch).to_be_checked()
    assert heatmap_pixels(article)["visible"]

    # History: the new result is there; filters narrow it; a row opens the result view.
    prediction_id = article.get_attribute("data-prediction-id")
    assert prediction_id and re.fullmatch(r"[0-9a-f]{32}", prediction_id)
    go(page, "History")
    expect(page.get_by_role("heading", name="History", level=1)).to_be_visible()
    row = page.locator(f"#history-table tr[data-id='{prediction_id}']")
    expect(row).to_be_visible()
    expect(row).to_contain_text(LABEL_WORDS[chest.prediction.label])
    expect(row).to_contain_text("Web page")
    expect(row).to_contain_text("Not reviewed")
    other = "normal" if chest.prediction.label == "pneumonia" else "pneumonia"
    page.locator("#history-filters").get_by_label("Result").select_option(other)
    page.get_by_role("button", name="Apply filters").click()
    expect(row).to_have_count(0)
    page.locator("#history-filters").get_by_label("Result").select_option(chest.prediction.label)
    page.locator("#history-filters").get_by_label("Referral flag").select_option(
        "true" if chest.prediction.refer else "false"
    )
    page.get_by_role("button", name="Apply filters").click()
    expect(row).to_be_visible()
    rows = page.locator("#history-table tbody tr")
    expect(rows.filter(has_not_text=LABEL_WORDS[chest.prediction.label])).to_have_count(0)
    if chest.prediction.refer:
        expect(rows.filter(has_not_text="Refer")).to_have_count(0)
    expect(page.locator("#history-summary")).to_contain_text(
        re.compile(r"Showing 1–\d+ of \d+ results?, newest first")
    )
    assert_controls_labelled(page)
    shots(page, "14-clinician-history")

    row.get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"#/result/{prediction_id}$"))
    opened = result(page, "#result-host")
    assert_shows(opened, chest.prediction)
    expect(opened).to_contain_text(prediction_id)
    # Uploaded in this tab: the radiograph is shown from memory even though the server keeps no images.
    expect(opened.locator("img.radiograph")).to_have_attribute("src", re.compile(r"^data:image/png"))
    shots(page, "15-clinician-history-result")

    # Record the confirmed label.
    review = opened.get_by_role("region", name="Clinician review")
    expect(review).to_contain_text("Not reviewed yet")
    review.get_by_role("button", name="Record review").click()
    expect(review.get_by_role("status")).to_contain_text("Choose the confirmed finding first")
    review.get_by_role("radio", name="Pneumonia", exact=True).check()
    review.get_by_role("radio", name="Viral", exact=True).check()
    review.get_by_role("button", name="Record review").click()
    expect(review.get_by_role("status")).to_contain_text("Review recorded: pneumonia")
    agrees = chest.prediction.label == "pneumonia"
    expect(review.locator("ul.reviews li")).to_contain_text(f"Pneumonia (viral) — {username}")
    expect(review.locator("ul.reviews li")).to_contain_text(
        "Agrees with the model." if agrees else "Differs from the model."
    )
    shots(page, "16-clinician-review")
    page.get_by_role("link", name="← Back to history").click()
    expect(page.locator(f"#history-table tr[data-id='{prediction_id}']")).to_contain_text(
        f"Pneumonia ({'agrees' if agrees else 'differs'})"
    )

    # Sign out: the credential is gone (it lived in memory only) and the pages are closed.
    assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0
    assert "access_token" not in page.evaluate("() => document.cookie")
    sign_out(page)
    page.goto(f"{page.url.split('#')[0]}#/history")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.locator("#history-table tbody tr")).to_have_count(0)
    shots(page, "17-clinician-signed-out")


def test_batch_of_files_each_with_its_progress_and_outcome(
    new_page, server: Server, shots: Shots, accepted_chests: list[Chest], chest_dicom: Path, photo_png: Path
) -> None:
    username, password = server.create_user("clinician")
    page = new_page()
    sign_in(page, username, password)
    files = [chest.path for chest in accepted_chests[:2]] + [chest_dicom, photo_png]
    # A slow uplink (as from a ward PC), so that the bars are seen moving; then full speed again.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    slow = {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 300 * 1024}
    cdp.send("Network.emulateNetworkConditions", slow)
    upload(page, *files)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#queue progress')].some((bar) => bar.value > 0 && bar.value < 90)"
    )
    expect(page.locator("#queue [data-state=uploading]").first).to_contain_text(re.compile(r"Uploading \d+%"))
    shots(page, "20-batch-uploading")
    cdp.send("Network.emulateNetworkConditions", {**slow, "latency": 0, "uploadThroughput": -1})
    items = page.locator("#queue li")
    expect(items).to_have_count(len(files))
    for item, path in zip(items.all(), files, strict=True):  # one progress bar per file
        expect(item.locator(f"progress[aria-label='Progress of {path.name}']")).to_have_count(1)
    expect(page.locator("#queue-title")).to_have_text("Uploads: 3 analysed, 1 refused", timeout=90_000)
    for index in range(2):
        expect(items.nth(index)).to_have_attribute("data-state", "done")
        expect(items.nth(index)).to_contain_text(headline(accepted_chests[index].prediction))
    for item in items.all():
        expect(item.locator("progress")).to_have_js_property("value", 100)
    expect(items.nth(3)).to_have_attribute("data-state", "refused")
    expect(items.nth(3)).to_contain_text("Not analysed")
    shots(page, "21-batch-done")

    # Each analysed file opens on demand (here the second: a normal radiograph with the bundled model).
    second = accepted_chests[1]
    items.nth(1).get_by_role("button", name=f"View result for {second.path.name}").click()
    assert_shows(result(page), second.prediction)
    expect(items.nth(1)).to_have_class(re.compile(r"\bselected\b"))
    shots(page, "22-batch-second-result")

    # The DICOM: rendered to PNG by the service, shown with its heatmap.
    items.nth(2).get_by_role("button", name="View result for chest-pa.dcm").click()
    article = result(page)
    expect(article.locator("img.radiograph")).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    expect(article).to_contain_text("DICOM")
    expect(article).to_contain_text("view PA")
    shots(page, "23-batch-dicom-result")


def test_a_radiograph_dropped_on_the_page_is_read(
    new_page, server: Server, shots: Shots, chest: Chest
) -> None:
    username, password = server.create_user("clinician")
    page = new_page()
    sign_in(page, username, password)
    data = base64.b64encode(chest.path.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: "image/jpeg"}));
            return transfer;
        }""",
        [chest.path.name, data],
    )
    zone = page.locator("#dropzone")
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(zone).to_have_class(re.compile(r"\bdragging\b"))
    shots(page, "18-drag-over")
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(zone).not_to_have_class(re.compile(r"\bdragging\b"))
    assert_shows(result(page), chest.prediction)
    expect(page.locator("#queue li")).to_contain_text(chest.path.name)


def test_a_referred_result_says_why_in_a_banner(
    new_page, server: Server, shots: Shots, referred_chest: Chest
) -> None:
    username, password = server.create_user("clinician")
    page = new_page()
    sign_in(page, username, password)
    upload(page, referred_chest.path)
    article = result(page)
    assert_shows(article, referred_chest.prediction)
    banner = article.locator("[data-testid=refer]")
    expect(banner).to_have_attribute("role", "alert")
    prediction = referred_chest.prediction
    atypical = any(f.code == "atypical_input" for f in prediction.findings)
    if atypical and len(prediction.prediction_set) == 1:
        expect(banner).to_contain_text("unlike the chest X-rays the model learnt from")
    elif not prediction.prediction_set:
        expect(banner).to_contain_text("Neither “normal” nor “pneumonia” fits this image well enough")
    else:
        expect(banner).to_contain_text("cannot separate “normal” from “pneumonia”")
    if atypical:
        expect(article.get_by_role("heading", name="Notes on this image")).to_be_visible()
        expect(article).to_contain_text("treat this result with extra caution")
    expect(page.locator("#queue li")).to_contain_text("refer")
    shots(page, "19-refer-banner")
