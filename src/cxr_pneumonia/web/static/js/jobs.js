// Model jobs (admin): start a recalibration on the clinicians' reviewed cases (POST /admin/jobs), watch
// its status, progress and log (GET /admin/jobs/{id}, polled while it runs), and read before/after.

import { request } from "./api.js";
import { $, announce, cell, formatDateTime, h, hideMessage, setBusy, showError } from "./dom.js";

const POLL_MS = 1000;
const STATUS_WORDS = {
  queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", interrupted: "Interrupted",
};
const STATUS_TAG = {
  queued: "tag-inactive", running: "tag-refer", succeeded: "tag-outcome-ok", failed: "tag-outcome-failed",
  interrupted: "tag-outcome-failed",
};
// [label, key, digits, as percent]
const MEASURES = [
  ["Sensitivity", "sensitivity", 1, true],
  ["Specificity", "specificity", 1, true],
  ["Referred to a radiologist", "referral_rate", 1, true],
  ["Calibration error (ECE)", "ece", 3, false],
  ["Brier score", "brier", 3, false],
  ["AUROC", "auroc", 3, false],
  ["Temperature", "temperature", 3, false],
  ["Threshold", "threshold", 3, false],
];

let shownId = null;
let timer = null;

export function initJobs() {
  $("#recal-form").addEventListener("submit", startRecalibration);
}

export function resetJobs() {
  stopPolling();
  shownId = null;
  $("#job-current").hidden = true;
  $("#jobs-table tbody").replaceChildren();
  $("#recal-form").reset();
}

export async function loadJobs() {
  hideMessage($("#jobs-error"));
  const jobs = await loadList();
  const live = jobs.find((job) => job.status === "queued" || job.status === "running");
  const pick = live || jobs.find((job) => job.id === shownId) || jobs[0];
  if (pick) show(pick);
}

async function loadList() {
  try {
    const { jobs } = await request("admin/jobs");
    const body = $("#jobs-table tbody");
    body.replaceChildren(...jobs.map(jobRow));
    if (!jobs.length) body.append(h("tr", { class: "empty" }, h("td", { colspan: "6" }, "No jobs yet.")));
    return jobs;
  } catch (error) {
    showError($("#jobs-error"), error, "The jobs could not be loaded");
    return [];
  }
}

async function startRecalibration(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button[type=submit]");
  hideMessage($("#jobs-error"));
  const seed = Number.parseInt(form.seed.value || "0", 10);
  setBusy(button, true, "Starting…");
  try {
    const job = await request("admin/jobs", {
      method: "POST",
      json: { kind: "recalibrate", holdout: Number(form.holdout.value), seed: Number.isFinite(seed) ? seed : 0 },
    });
    announce("Recalibration started.");
    show(job);
    await loadList();
  } catch (error) {
    showError($("#jobs-error"), error, "The recalibration could not be started");
  } finally {
    setBusy(button, false);
  }
}

function stopPolling() {
  clearTimeout(timer);
  timer = null;
}

function show(job) {
  stopPolling();
  const changed = shownId !== job.id;
  shownId = job.id;
  render(job, changed);
  if (job.status === "queued" || job.status === "running") timer = setTimeout(() => poll(job.id), POLL_MS);
}

async function poll(id) {
  if (document.body.dataset.view !== "jobs" || id !== shownId) return; // left the page: stop asking
  try {
    const job = await request(`admin/jobs/${id}`);
    const ended = job.status !== "queued" && job.status !== "running";
    show(job);
    if (ended) {
      announce(`The job ${STATUS_WORDS[job.status].toLowerCase()}.`);
      await loadList();
    }
  } catch (error) {
    showError($("#jobs-error"), error, "The job's status could not be read");
    timer = setTimeout(() => poll(id), POLL_MS * 5);
  }
}

function render(job, changed) {
  $("#job-current").hidden = false;
  $("#job-current").dataset.jobId = job.id;
  $("#job-current-title").textContent = `${kindWords(job.kind)} · started ${formatDateTime(job.created_at, true)}`;
  const status = $("#job-status");
  status.textContent = STATUS_WORDS[job.status] || job.status;
  status.className = `tag ${STATUS_TAG[job.status] || ""}`;
  status.dataset.status = job.status;
  $("#job-stage").textContent = job.stage || "";
  const bar = $("#job-progress");
  if (job.progress === null || job.progress === undefined) bar.removeAttribute("value");
  else bar.value = job.progress;
  const log = $("#job-log");
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.textContent = job.log_tail || "";
  if (atEnd || changed) log.scrollTop = log.scrollHeight;
  const failure = $("#job-failure");
  failure.hidden = !job.error;
  failure.textContent = job.error ? `This job ${job.status === "interrupted" ? "was interrupted" : "failed"}: ${job.error}` : "";
  renderResult(job.result);
}

function renderResult(result) {
  const box = $("#job-result");
  box.hidden = !result;
  if (!result) return;
  const registry = result.registry || {};
  $("#job-package").replaceChildren(
    "New model ", h("strong", {}, result.model_id || "—"), " (digest ", h("code", {}, (result.digest || "").slice(0, 12)), "…) ",
    registry.registered
      ? `registered as ${registry.name} version ${registry.version}, alias “${registry.alias}”: not in service until an administrator promotes it.`
      : `not registered${registry.reason ? `: ${registry.reason}` : ""}.`,
  );
  const evaluation = result.evaluation || {};
  $("#job-cases").textContent = evaluation.note || "";
  const warnings = evaluation.warnings || [];
  $("#job-warnings").textContent = warnings.length ? `Worse than the current rule on these cases: ${warnings.join("; ")}.` : "";
  $("#job-warnings").hidden = !warnings.length;
  const before = evaluation.before || {};
  const after = evaluation.after || {};
  $("#job-metrics tbody").replaceChildren(...(evaluation.before ? MEASURES : []).map(([label, key, digits, pct]) =>
    h("tr", { dataset: { measure: key } },
      h("th", { scope: "row" }, label),
      h("td", {}, number(before[key], digits, pct)),
      h("td", {}, number(after[key], digits, pct)))));
}

function number(value, digits, pct) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return pct ? `${(value * 100).toFixed(digits)} %` : Number(value).toFixed(digits);
}

function kindWords(kind) {
  return { recalibrate: "Recalibration", train: "Training", tune: "Tuning" }[kind] || kind;
}

function jobRow(job) {
  const open = h("button", { type: "button", class: "button small quiet", "aria-label": `Show job ${job.id}` }, "Show");
  open.addEventListener("click", () => show(job));
  const result = job.result && job.result.model_id ? job.result.model_id : job.error ? "—" : "";
  return h("tr", { dataset: { jobId: job.id, status: job.status } },
    cell("Started", null, formatDateTime(job.created_at)),
    cell("Kind", null, kindWords(job.kind)),
    cell("Status", null, h("span", { class: `tag ${STATUS_TAG[job.status] || ""}` }, STATUS_WORDS[job.status] || job.status)),
    cell("By", { class: "muted" }, job.created_by),
    cell("Result", null, result),
    h("td", { class: "actions" }, open));
}
