"""What a person does on the page, as small steps the tests share (Playwright locators by role and label)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from cxr_pneumonia.inference import Prediction

SUBTYPE_CONFIDENT = 0.6  # web/static/js/result.js: below it the page says the pattern is uncertain
LABEL_WORDS = {"pneumonia": "Pneumonia", "normal": "No pneumonia detected"}
OUTSIDE_WORDS = "Outside the population this model was trained for"


def headline(prediction: Prediction) -> str:
    """What the page leads with: outside the training population that warning, never the label."""
    return OUTSIDE_WORDS if prediction.outside_population else LABEL_WORDS[prediction.label]


RAW_LEAKS = re.compile(r"Traceback|\{\s*\"|\"error\"\s*:|\"detail\"\s*:|request_id")


def sign_in(page: Any, username: str, password: str) -> None:
    form = page.locator("#signin-form")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Sign in").click()
    expect(page.locator("#account")).to_be_visible()
    expect(page.locator("#account-name")).to_have_text(username)


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.locator("#account")).to_be_hidden()


def go(page: Any, view: str) -> None:
    """Follow a link of the main navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=view).click()


def upload(page: Any, *paths: Path) -> None:
    page.locator("#file-input").set_input_files([str(p) for p in paths])


def result(page: Any, scope: str = "#analyse-result") -> Any:
    """The result on screen, once its heatmap is painted."""
    article = page.locator(f"{scope} [data-testid=result]")
    expect(article).to_be_visible(timeout=60_000)
    expect(article.locator("[data-testid=stage]")).to_have_attribute(
        "data-heatmap-ready", "true", timeout=30_000
    )
    return article


def assert_shows(article: Any, prediction: Prediction) -> None:
    """The page says what the model said: label in words, probability, subtype, refer, model, notice."""
    verdict = f"{OUTSIDE_WORDS} — refer" if prediction.outside_population else LABEL_WORDS[prediction.label]
    expect(article.locator("[data-testid=verdict]")).to_have_text(verdict)
    expect(article.locator("[data-testid=probability]")).to_have_text(f"{prediction.p_pneumonia * 100:.0f}%")
    meter = article.get_by_role("meter")
    expect(meter).to_have_attribute("aria-valuenow", f"{prediction.p_pneumonia * 100:.0f}")
    expect(article.get_by_text(f"threshold {prediction.threshold * 100:.0f}%", exact=True)).to_be_visible()
    subtype = article.locator("[data-testid=subtype]")
    if prediction.label == "pneumonia":
        confident = (prediction.subtype_confidence or 0.0) >= SUBTYPE_CONFIDENT
        words = f"{prediction.subtype.capitalize()} pattern" if confident else "Bacterial or viral: uncertain"  # type: ignore[union-attr]
        expect(subtype).to_have_text(words)
        # the subtype is given once, with one number (its share of the pneumonia probability), explained
        block = article.locator(".subtype")
        shown = re.findall(r"\d+%", block.inner_text())
        share = f"{(prediction.subtype_confidence or 0.0) * 100:.0f}%"
        assert shown == ([share] if confident else []), shown
        expect(block.locator("[data-testid=subtype-explained]")).to_contain_text("not a microbiology result")
    else:
        expect(subtype).to_have_count(0)
    refer = article.locator("[data-testid=refer]")
    if prediction.refer:
        expect(refer).to_be_visible()
        expect(refer).to_contain_text("Refer to a radiologist")
    else:
        expect(refer).to_have_count(0)
    switch = article.get_by_role("switch", name="Heatmap")
    if prediction.label == "pneumonia" or prediction.heatmap_reference is not None:
        # on one scale for every image (the package's reference), a normal one's map is faint: shown
        expect(switch).to_be_checked()
    else:  # a peak-scaled map of faint evidence would mislead: off until asked for, and said why
        expect(switch).not_to_be_checked()
        expect(article).to_contain_text("it is off at first")
    expect(article).to_contain_text(f"{prediction.model.name} {prediction.model.version}")
    expect(article.locator("[data-testid=disclaimer]")).to_contain_text("not a diagnosis")


def heatmap_pixels(article: Any) -> dict[str, Any]:
    """How the heatmap canvas is drawn: its size, how many pixels carry colour, its opacity, visibility."""
    return article.locator("canvas.heat").evaluate(
        """(canvas) => {
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let coloured = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) coloured += 1;
            return {width: canvas.width, height: canvas.height, coloured, opacity: canvas.style.opacity,
                    visible: !canvas.hidden && canvas.getBoundingClientRect().width > 0};
        }"""
    )


def assert_in_words(locator: Any) -> str:
    """The text a person reads: no JSON, no stack trace, no field names."""
    text = locator.inner_text()
    assert not RAW_LEAKS.search(text), f"raw error text on the page: {text!r}"
    return text


def no_horizontal_scroll(page: Any) -> None:
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the screen"


def assert_controls_labelled(page: Any) -> None:
    """Every visible control has a name a screen reader can say (label, aria-label(ledby) or text)."""
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button, a[href]")]
            .filter((el) => el.getClientRects().length > 0 && el.type !== "hidden")
            .filter((el) => {
                const text = (el.textContent || "").trim();
                const labelled = (el.labels && el.labels.length > 0) || el.getAttribute("aria-label")
                    || el.getAttribute("aria-labelledby");
                return !(labelled || ((el.tagName === "BUTTON" || el.tagName === "A") && text));
            })
            .map((el) => el.outerHTML.slice(0, 120))"""
    )
    assert not unnamed, f"controls without an accessible name: {unnamed}"
