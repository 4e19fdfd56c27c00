// The history: past predictions with filters and paging; a row opens the result view.

import { fetchBlob, request } from "./api.js";
import { $, announce, errorContent, formatDateTime, h, hideMessage, localDayStart, percent, showError, cell } from "./dom.js";
import { callerWords } from "./result.js";
import { labelWords, sourceWords, subtypeWords } from "./words.js";

const PAGE = 20;
let offset = 0;
let total = 0;
let loading = null;

function filters() {
  const form = $("#history-filters");
  const value = (name) => form.elements[name].value;
  return {
    label: value("label"),
    refer: value("refer"),
    reviewed: value("reviewed"),
    source: value("source"),
    since: localDayStart(value("since")),
    until: localDayStart(value("until"), 1), // "to" includes the whole day
  };
}

export function initHistory() {
  const form = $("#history-filters");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    loadHistory();
  });
  form.addEventListener("reset", () => {
    setTimeout(() => {
      offset = 0;
      loadHistory();
    });
  });
  $("#history-prev").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    loadHistory(true);
  });
  $("#history-next").addEventListener("click", () => {
    if (offset + PAGE < total) offset += PAGE;
    loadHistory(true);
  });
}

export function resetHistory() {
  offset = 0;
  total = 0;
  $("#history-filters").reset();
  $("#history-table tbody").replaceChildren();
  $("#history-summary").textContent = "";
}

export async function loadHistory(fromPager = false) {
  const box = $("#history-error");
  const body = $("#history-table tbody");
  const summary = $("#history-summary");
  hideMessage(box);
  const f = filters();
  if (f.since && f.until && f.since >= f.until) {
    box.replaceChildren(errorContent({ title: "Check the dates", text: "The “From” date must be on or before the “To” date." }));
    box.className = "message error";
    box.hidden = false;
    return;
  }
  const mine = Symbol("load");
  loading = mine;
  $("#history-table").setAttribute("aria-busy", "true");
  try {
    const page = await request("predictions", { query: { ...f, limit: PAGE, offset } });
    if (loading !== mine) return;
    total = page.total;
    body.replaceChildren(...page.items.map(row));
    if (!page.items.length) {
      body.append(h("tr", { class: "empty" }, h("td", { colspan: "8" },
        total ? "No results on this page." : "No results match these filters.")));
    }
    const first = page.items.length ? offset + 1 : 0;
    const last = offset + page.items.length;
    summary.textContent = total
      ? `Showing ${first}–${last} of ${total} result${total === 1 ? "" : "s"}, newest first.`
      : "No results.";
    $("#history-page").textContent = total ? `Page ${Math.floor(offset / PAGE) + 1} of ${Math.ceil(total / PAGE)}` : "";
    $("#history-prev").disabled = offset === 0;
    $("#history-next").disabled = offset + PAGE >= total;
    if (fromPager) announce(summary.textContent);
  } catch (error) {
    if (loading !== mine) return;
    body.replaceChildren();
    summary.textContent = "";
    showError(box, error, "The history could not be loaded");
  } finally {
    if (loading === mine) $("#history-table").removeAttribute("aria-busy");
  }
}

/** A small radiograph (only when images are kept), fetched with the credential like every image. */
function thumbnail(item) {
  if (!item.thumbnail_url) return null;
  const img = h("img", { class: "thumb", alt: "", width: 48, height: 48, "data-testid": "thumbnail" });
  fetchBlob(item.thumbnail_url)
    .then((blob) => { img.src = URL.createObjectURL(blob); })
    .catch(() => img.remove());
  return img;
}

function row(item) {
  const href = `#/result/${item.id}`;
  const pneumonia = item.label === "pneumonia";
  const review = item.reviews && item.reviews.length ? item.reviews[item.reviews.length - 1] : null;
  const reviewText = review
    ? `${review.label === "pneumonia" ? "Pneumonia" : "No pneumonia"} (${review.agrees ? "agrees" : "differs"})`
    : "Not reviewed";
  const tr = h(
    "tr",
    { class: `clickable ${item.refer ? "flagged" : ""}`, "data-id": item.id },
    cell("Date", null, h("a", { href, class: "row-link" }, formatDateTime(item.created_at))),
    cell("Reference", null, thumbnail(item),
      item.reference ? h("span", { "data-testid": "reference" }, item.reference) : h("span", { class: "muted" }, "—")),
    cell("Result", null,
      h("span", { class: `tag ${pneumonia ? "tag-pneumonia" : "tag-normal"}` }, labelWords(item.label)),
      pneumonia && item.subtype
        ? h("span", { class: "sub" }, item.subtype_confidence >= 0.6 ? ` ${subtypeWords(item.subtype)}` : " pattern uncertain")
        : null),
    cell("P(pneumonia)", { class: "num" }, percent(item.p_pneumonia)),
    cell("Referral", null,
      item.refer ? h("span", { class: "tag tag-refer" }, "Refer") : h("span", { class: "muted" }, "—")),
    cell("Review", null, h("span", { class: review ? "" : "muted" }, reviewText)),
    cell("Source", null, sourceWords(item.source), h("span", { class: "sub" }, ` · ${callerWords(item.caller)}`)),
    cell("Model", { class: "muted" }, `${item.model.name} ${item.model.version}`),
  );
  // The date is a real link (keyboard, screen readers); the rest of the row is a larger mouse target.
  tr.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    window.location.hash = href;
  });
  return tr;
}
