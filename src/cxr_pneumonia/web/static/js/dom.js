// Small DOM helpers: build elements without innerHTML (no injection from data), announce to screen readers.

import { describeError } from "./words.js";

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** h("button", {class: "x", onclick: fn}, "text", child, ...) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

let announceTimer = null;

/** Say something to screen-reader users (polite live region). */
export function announce(message) {
  const region = $("#announcer");
  if (!region) return;
  region.textContent = "";
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    region.textContent = message;
  }, 60);
}

/** Fill a message box (role=alert) with an error in words, and a reference for support. */
export function showError(box, error, prefix) {
  const words = describeError(error);
  box.replaceChildren(errorContent(words, prefix));
  box.className = `message ${words.refusal ? "refusal" : "error"}`;
  box.hidden = false;
  return words;
}

const plain = (text) => String(text || "").toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();

export function errorContent(words, prefix) {
  let title = words.title;
  if (prefix) title = words.title === "Not done" ? prefix : `${prefix}: ${words.title.toLowerCase()}`;
  // The service's own sentence, unless it only repeats ours.
  const detail = words.detail && !plain(words.text).includes(plain(words.detail)) ? words.detail : "";
  return h(
    "div",
    { class: "message-body" },
    h("p", { class: "message-title" }, title),
    h("p", null, words.text),
    detail ? h("p", { class: "message-detail" }, `Service says: ${capitalise(detail)}.`) : null,
    words.requestId ? h("p", { class: "message-ref" }, `Reference: ${words.requestId}`) : null,
  );
}

export function showMessage(box, text, kind = "info") {
  box.replaceChildren(h("p", null, text));
  box.className = `message ${kind}`;
  box.hidden = false;
}

export function hideMessage(box) {
  box.hidden = true;
  box.replaceChildren();
}

export function capitalise(text) {
  const trimmed = String(text || "").trim().replace(/[.]$/, "");
  return trimmed ? trimmed[0].toUpperCase() + trimmed.slice(1) : trimmed;
}

export function percent(p, digits = 0) {
  if (p === null || p === undefined || Number.isNaN(p)) return "–";
  return `${(p * 100).toFixed(digits)}%`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateTimeSeconds = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function formatDateTime(iso, seconds = false) {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return (seconds ? dateTimeSeconds : dateTime).format(date);
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** A local calendar date (YYYY-MM-DD from <input type=date>) as the UTC instant of its local midnight. */
export function localDayStart(value, plusDays = 0) {
  if (!value) return undefined;
  const [year, month, day] = value.split("-").map(Number);
  return new Date(year, month - 1, day + plusDays).toISOString();
}

/** Put keyboard focus on an element that is not normally focusable (headings, results). */
export function focusHeading(el) {
  if (!el) return;
  if (!el.hasAttribute("tabindex")) el.setAttribute("tabindex", "-1");
  el.focus({ preventScroll: false });
}

/** Ask before something that cannot be undone; resolves true when confirmed. */
export function confirmAction(title, text, okLabel) {
  const dialog = $("#confirm-dialog");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

export function setBusy(button, busy, busyLabel) {
  if (busy) {
    button.dataset.label = button.textContent;
    button.textContent = busyLabel;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  } else {
    if (button.dataset.label) button.textContent = button.dataset.label;
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

const SVG = "http://www.w3.org/2000/svg";
const ICONS = {
  warning: [
    ["path", { d: "M12 3l10 18H2L12 3z", fill: "currentColor" }],
    ["path", { d: "M12 10v5M12 17.5v.5", stroke: "#fff", "stroke-width": "2", "stroke-linecap": "round" }],
  ],
  refused: [
    ["circle", { cx: "12", cy: "12", r: "10", fill: "currentColor" }],
    ["path", { d: "M8 8l8 8M16 8l-8 8", stroke: "#fff", "stroke-width": "2", "stroke-linecap": "round" }],
  ],
  done: [
    ["circle", { cx: "12", cy: "12", r: "10", fill: "currentColor" }],
    ["path", { d: "M7.5 12.5l3 3 6-7", stroke: "#fff", "stroke-width": "2", fill: "none", "stroke-linecap": "round" }],
  ],
};

/** An SVG element (namespaced) with its attributes. */
export function svgElement(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) el.setAttribute(key, String(value));
  }
  return el;
}

/** A decorative inline SVG icon (aria-hidden). */
export function icon(name, className) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `icon ${className || ""}`.trim());
  for (const [tag, attrs] of ICONS[name] || []) svg.append(svgElement(tag, attrs));
  return svg;
}

/** A table cell labelled for the phone layout (where rows become cards): <td data-label><span>…</span></td>. */
export function cell(label, attrs, ...children) {
  return h("td", { ...(attrs || {}), "data-label": label }, h("span", { class: "cell-value" }, ...children));
}
