// Monitoring (auditors and administrators): drift alarms, drift and rate time series drawn here as SVG
// (no chart library, nothing from a CDN), the newest window's tests, and the reviewed performance.

import { request } from "./api.js";
import { $, announce, formatDateTime, h, hideMessage, showError } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const KINDS = ["input", "feature", "output", "rate"];
const COLOURS = { input: "#1f6feb", feature: "#8250df", output: "#bf8700", rate: "#1a7f37",
                  refer: "#bf8700", refusal: "#cf222e", pneumonia: "#1f6feb" };
const KIND_WORDS = { input: "Input", feature: "Features", output: "Outputs", rate: "Rates" };

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

/** A line chart of several series over time: series = {name: [[Date, value|null], ...]}. */
export function lineChart(series, { yMax, threshold, percent = false, label }) {
  const width = 560, height = 220, left = 44, right = 10, top = 10, bottom = 28;
  const points = Object.values(series).flat().filter(([, v]) => v !== null && v !== undefined);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart" });
  if (!points.length) {
    root.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "chart-empty" }, "No evaluation yet"));
    return root;
  }
  const times = points.map(([t]) => t.getTime());
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1000);
  const highest = Math.max(threshold ?? 0, ...points.map(([, v]) => v));
  const top_ = yMax !== undefined && highest <= yMax ? yMax : highest * 1.08 || 1;  // rates: 0-100%
  const x = (t) => left + ((t.getTime() - t0) / (t1 - t0)) * (width - left - right);
  const y = (v) => top + (1 - v / top_) * (height - top - bottom);
  for (let i = 0; i <= 4; i++) {
    const v = (top_ * i) / 4;
    root.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "chart-grid" }));
    root.append(svg("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end", class: "chart-tick" },
      percent ? `${Math.round(v * 100)}%` : v.toFixed(1)));
  }
  for (const [t, anchor] of [[new Date(t0), "start"], [new Date(t1), "end"]]) {
    root.append(svg("text", { x: x(t), y: height - 8, "text-anchor": anchor, class: "chart-tick" }, formatDateTime(t.toISOString(), true)));
  }
  if (threshold !== undefined) {
    root.append(svg("line", { x1: left, x2: width - right, y1: y(threshold), y2: y(threshold), class: "chart-threshold" }));
  }
  let legendX = left + 6;
  for (const [name, values] of Object.entries(series)) {
    const d = values.filter(([, v]) => v !== null && v !== undefined)
      .map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
    if (d) root.append(svg("path", { d, fill: "none", stroke: COLOURS[name] || "#555", "stroke-width": 2, class: `series-${name}` }));
    root.append(svg("rect", { x: legendX, y: top + 2, width: 10, height: 10, fill: COLOURS[name] || "#555" }));
    root.append(svg("text", { x: legendX + 14, y: top + 11, class: "chart-legend" }, name));
    legendX += 20 + name.length * 7;
  }
  return root;
}

const number = (v, digits = 3) => (v === null || v === undefined ? "–" : Number(v).toPrecision(digits));
const rate = (r) => (r ? `${(r.value * 100).toFixed(1)}% (${(r.ci95[0] * 100).toFixed(0)}–${(r.ci95[1] * 100).toFixed(0)}%)` : "–");

function render(body) {
  const current = body.current;
  const alarms = $("#monitoring-alarms");
  alarms.replaceChildren(...KINDS.map((kind) => {
    const alarm = Boolean(current && current.summary[kind] && current.summary[kind].alarm);
    return h("span", { class: `badge ${alarm ? "alarm" : "ok"}`, dataset: { kind } },
      `${KIND_WORDS[kind]}: ${alarm ? "drift alarm" : "no alarm"}`);
  }));
  $("#monitoring-summary").textContent = !body.active
    ? "The served model is not monitored for drift: its package has no monitoring reference (cxr monitor reference)."
    : current
      ? `Newest window: ${current.window_size} inputs, evaluated ${formatDateTime(current.created_at, true)}. ` +
        `Reference: ${body.reference.images} validation images. ${Object.values(body.gaps).reduce((a, b) => a + b, 0)} inputs not monitored.`
      : "Monitored; no window has been evaluated yet.";
  const history = body.history.map((p) => ({ ...p, t: new Date(p.at) }));
  const alpha = body.config ? body.config.alpha : 0.01;
  const drift = Object.fromEntries(KINDS.map((k) => [k, history.map((p) => [p.t, p.scores[k]])]));
  $("#monitoring-drift-chart").replaceChildren(lineChart(drift, { threshold: -Math.log10(alpha), label: "Drift score by kind over time" }));
  const rates = Object.fromEntries(["refer", "refusal", "pneumonia"].map((k) => [k, history.map((p) => [p.t, p.rates[k]])]));
  $("#monitoring-rates-chart").replaceChildren(lineChart(rates, { yMax: 1, percent: true, label: "Window rates over time" }));
  $("#monitoring-tests tbody").replaceChildren(...(current ? current.tests : []).map((t) =>
    h("tr", { class: t.alarm ? "alarm" : null }, h("td", {}, t.kind), h("td", {}, t.name), h("td", {}, t.n),
      h("td", {}, number(t.statistic)), h("td", {}, number(t.p_adjusted)), h("td", {}, t.streak),
      h("td", {}, t.alarm ? "ALARM" : ""))));
  $("#monitoring-reviewed tbody").replaceChildren(...body.reviewed.map((r) =>
    h("tr", {}, h("td", {}, r.model), h("td", {}, r.reported ? r.n : `${r.n} (reported from ${r.min_reviews})`),
      h("td", {}, rate(r.sensitivity)), h("td", {}, rate(r.specificity)), h("td", {}, rate(r.ppv)),
      h("td", {}, r.reported ? number(r.ece, 2) : "–"))));
}

export async function loadMonitoring() {
  const box = $("#monitoring-error");
  hideMessage(box);
  try {
    const body = await request("monitoring");
    render(body);
    const alarmed = KINDS.filter((k) => body.current && body.current.summary[k] && body.current.summary[k].alarm);
    announce(alarmed.length ? `Drift alarm: ${alarmed.join(", ")}` : "Monitoring loaded, no drift alarm");
  } catch (error) {
    showError(box, error, "Monitoring could not be loaded");
  }
}

export function initMonitoring() {
  $("#monitoring-refresh").addEventListener("click", () => loadMonitoring());
}
