// Models being served (GET /models) and how the champion and the shadow agree (GET /models/compare):
// a small table and a scatter plot drawn here as SVG (no chart library, no CDN).

import { request } from "./api.js";
import { $, cell, formatDateTime, h, showError, svgElement as svg } from "./dom.js";

const SIZE = 240;
const PAD = 28;

export function resetModels() {
  $("#models-table tbody").replaceChildren();
  $("#agreement-table tbody").replaceChildren();
  $("#agreement").hidden = true;
}

export async function loadModels() {
  try {
    const served = await request("models");
    $("#models-table tbody").replaceChildren(...served.models.map(modelRow));
    const champion = served.models.find((m) => m.role === "champion");
    const shadow = served.models.find((m) => m.role === "shadow");
    if (champion && shadow) await loadAgreement(champion, shadow);
  } catch (error) {
    showError($("#admin-error"), error, "The models could not be loaded");
  }
}

function modelRow(model) {
  return h("tr", { dataset: { role: model.role } },
    cell("Role", {}, model.role),
    cell("Model", {}, model.model_id),
    cell("Registry version", {}, model.registry_version || "— (a path)"),
    cell("Id", {}, h("code", {}, model.id)),
    cell("Loaded", {}, formatDateTime(model.loaded_at)));
}

function percent(value) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)} %`;
}

function withCi(p) {
  if (!p || p.value === null) return "no reviewed cases";
  return `${percent(p.value)} (95% CI ${percent(p.ci95[0])}–${percent(p.ci95[1])}, n = ${p.n})`;
}

async function loadAgreement(champion, shadow) {
  const report = await request(`models/compare?a=${champion.id}&b=${shadow.id}`);
  const rows = [
    ["Images read by both", String(report.pairs)],
    ["Same label", percent(report.agreement.value)],
    ["Mean |Δp|", report.mean_abs_delta_p === null ? "—" : report.mean_abs_delta_p.toFixed(3)],
    ["Normal → pneumonia", String(report.label_flips.normal_to_pneumonia)],
    ["Pneumonia → normal", String(report.label_flips.pneumonia_to_normal)],
    ["Reviewed by a clinician", String(report.reviewed)],
    ["Sensitivity: champion", withCi(report.on_reviewed.a.sensitivity)],
    ["Sensitivity: shadow", withCi(report.on_reviewed.b.sensitivity)],
    ["Specificity: champion", withCi(report.on_reviewed.a.specificity)],
    ["Specificity: shadow", withCi(report.on_reviewed.b.specificity)],
  ];
  $("#agreement-table tbody").replaceChildren(
    ...rows.map(([name, value]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, value))));
  drawScatter($("#agreement-plot"), report.points);
  $("#agreement").hidden = false;
}

function drawScatter(plot, points) {
  const span = SIZE - 2 * PAD;
  const x = (p) => PAD + p * span;
  const y = (p) => SIZE - PAD - p * span;
  const title = plot.querySelector("title");
  plot.replaceChildren(title);
  plot.append(svg("rect", { x: PAD, y: PAD, width: span, height: span, class: "plot-frame" }));
  plot.append(svg("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: "plot-diagonal" }));
  const labels = [
    ["0", PAD, SIZE - 14, 0], ["1", SIZE - PAD, SIZE - 14, 0], ["champion", SIZE / 2, SIZE - 4, 0],
    ["1", 16, PAD + 4, 0], ["shadow", 12, SIZE / 2, -90],
  ];
  for (const [label, xPos, yPos, angle] of labels) {
    const text = svg("text", { x: xPos, y: yPos, "text-anchor": "middle", class: "plot-label",
      transform: angle ? `rotate(${angle} ${xPos} ${yPos})` : null });
    text.textContent = label;
    plot.append(text);
  }
  for (const [a, b] of points) {
    plot.append(svg("circle", { cx: x(a).toFixed(1), cy: y(b).toFixed(1), r: 3, class: "plot-dot" }));
  }
}
