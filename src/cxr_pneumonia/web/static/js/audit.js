// The audit trail (auditors and administrators): filters, paging, CSV export and the chain check.

import { fetchBlob, request } from "./api.js";
import { $, announce, errorContent, formatDateTime, h, hideMessage, localDayStart, setBusy, showError, cell } from "./dom.js";
import { describeError } from "./words.js";

const PAGE = 25;
const CSV_LIMIT = 100000;
let offset = 0;
let total = 0;
let csvUrl = null;

const ACTIONS = {
  predict: "Analyse",
  review: "Review",
  login: "Sign in",
  authenticate: "Credential refused",
  authorize: "Permission refused",
  read_predictions: "Read history",
  read_prediction: "Open result",
  read_heatmap: "Read heatmap",
  read_image: "Read image",
  read_audit: "Read audit trail",
  verify_audit: "Verify audit chain",
  list_users: "List users",
  list_keys: "List keys",
  create_user: "Create user",
  disable_user: "Disable user",
  enable_user: "Enable user",
  create_key: "Create key",
  revoke_key: "Revoke key",
  change_password: "Change password",
};

const OUTCOMES = { ok: "OK", accepted: "Accepted", refused: "Refused", denied: "Denied", failed: "Failed" };

/** The audit trail names actors "user:alice", "key:<id>", "cli:root": a bare name means a user. */
function actorOf(text) {
  return text && !text.includes(":") ? `user:${text}` : text;
}

function filters() {
  const form = $("#audit-filters");
  const value = (name) => form.elements[name].value.trim();
  return {
    action: value("action"),
    outcome: value("outcome"),
    actor: actorOf(value("actor")),
    since: localDayStart(value("since")),
    until: localDayStart(value("until"), 1),
  };
}

export function initAudit() {
  const form = $("#audit-filters");
  const select = form.elements.action;
  for (const [value, text] of Object.entries(ACTIONS)) select.append(h("option", { value }, text));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    loadAudit();
  });
  form.addEventListener("reset", () => setTimeout(() => {
    offset = 0;
    loadAudit();
  }));
  $("#audit-prev").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    loadAudit(true);
  });
  $("#audit-next").addEventListener("click", () => {
    offset = Math.max(0, Math.min(offset + PAGE, total - PAGE));
    loadAudit(true);
  });
  $("#audit-csv").addEventListener("click", exportCsv);
  $("#audit-verify").addEventListener("click", verify);
}

export function resetAudit() {
  offset = 0;
  total = 0;
  $("#audit-filters").reset();
  $("#audit-table tbody").replaceChildren();
  $("#audit-summary").textContent = "";
  hideMessage($("#audit-verify-result"));
  if (csvUrl) URL.revokeObjectURL(csvUrl);
  csvUrl = null;
}

/**
 * Load a page of events. The trail is a ledger in chain order (oldest first, as the API gives it);
 * a new search opens on its latest page, the pager walks to earlier or later events.
 */
export async function loadAudit(fromPager = false) {
  const box = $("#audit-error");
  hideMessage(box);
  const base = { ...filters(), limit: PAGE };
  if (!fromPager) offset = 0;
  $("#audit-table").setAttribute("aria-busy", "true");
  try {
    let page = await request("audit", { query: { ...base, offset } });
    if (!fromPager && page.total > PAGE) {
      // The latest events. Reading the trail is itself an event, appended after the count above:
      // one more so that the newest row (this very read) is on the page too.
      offset = page.total - PAGE + 1;
      page = await request("audit", { query: { ...base, offset } });
    }
    total = page.total;
    const body = $("#audit-table tbody");
    body.replaceChildren(...page.items.map(row));
    if (!page.items.length) body.append(h("tr", { class: "empty" }, h("td", { colspan: "6" }, "No events match these filters.")));
    const first = page.items.length ? offset + 1 : 0;
    $("#audit-summary").textContent = total
      ? `Events ${first}–${offset + page.items.length} of ${total}, in the order they happened${offset + PAGE >= total ? " (the latest are at the bottom)" : ""}.`
      : "No events.";
    $("#audit-page").textContent = total ? `${first}–${offset + page.items.length} of ${total}` : "";
    $("#audit-prev").disabled = offset === 0;
    $("#audit-next").disabled = offset + PAGE >= total;
    if (fromPager) announce($("#audit-summary").textContent);
  } catch (error) {
    showError(box, error, "The audit trail could not be loaded");
  } finally {
    $("#audit-table").removeAttribute("aria-busy");
  }
}

function detailText(detail) {
  const parts = [];
  for (const [key, value] of Object.entries(detail || {})) {
    if (value === null || value === undefined || value === "" || key === "digest") continue;
    const shown = typeof value === "object" ? JSON.stringify(value) : String(value);
    parts.push(`${key.replace(/_/g, " ")}: ${shown.length > 40 ? `${shown.slice(0, 39)}…` : shown}`);
  }
  return parts.join(" · ");
}

function row(event) {
  const outcome = OUTCOMES[event.outcome] || event.outcome;
  return h(
    "tr",
    { "data-seq": String(event.seq) },
    cell("#", { class: "num" }, String(event.seq)),
    cell("Time", null, formatDateTime(event.created_at, true)),
    cell("Actor", { class: "mono" }, event.actor),
    cell("Action", null, ACTIONS[event.action] || event.action,
      h("span", { class: "muted mono small-code" }, ` ${event.action}`)),
    cell("Outcome", null, h("span", { class: `tag tag-outcome-${event.outcome}` }, outcome)),
    cell("Details", { class: "detail-cell" }, detailText(event.detail) || h("span", { class: "muted" }, "—")),
  );
}

async function exportCsv(event) {
  // The CSV needs the credential, which a plain link cannot carry: fetch it, then hand the browser a file.
  const link = event.currentTarget;
  if (link.dataset.ready === "true") {
    link.dataset.ready = "";
    return; // the synthetic click below: let the browser download the blob
  }
  event.preventDefault();
  const box = $("#audit-error");
  hideMessage(box);
  const original = link.textContent;
  link.textContent = "Preparing CSV…";
  link.setAttribute("aria-busy", "true");
  try {
    const blob = await fetchBlob("audit", { ...filters(), format: "csv", limit: CSV_LIMIT });
    if (csvUrl) URL.revokeObjectURL(csvUrl);
    csvUrl = URL.createObjectURL(blob);
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
    link.href = csvUrl;
    link.download = `cxr-audit-${stamp}.csv`;
    link.dataset.ready = "true";
    link.click();
    announce("The audit CSV was downloaded.");
  } catch (error) {
    showError(box, error, "The CSV could not be exported");
  } finally {
    link.textContent = original;
    link.removeAttribute("aria-busy");
  }
}

async function verify(event) {
  const button = event.currentTarget;
  const box = $("#audit-verify-result");
  setBusy(button, true, "Verifying…");
  try {
    const report = await request("audit/verify");
    box.replaceChildren(h("div", { class: "message-body" },
      h("p", { class: "message-title" }, report.ok ? "The audit chain is intact" : "The audit chain is broken"),
      h("p", null, report.ok
        ? `${report.events} events and ${report.predictions} predictions checked.${report.head_hash ? ` Head: event ${report.head_seq}, hash ${report.head_hash.slice(0, 16)}…` : ""}`
        : report.detail)));
    box.className = `message ${report.ok ? "success" : "error"}`;
    box.hidden = false;
  } catch (error) {
    box.replaceChildren(errorContent(describeError(error), "The chain could not be verified"));
    box.className = "message error";
    box.hidden = false;
  } finally {
    setBusy(button, false);
  }
}
