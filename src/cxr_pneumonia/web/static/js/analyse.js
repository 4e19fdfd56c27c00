// Upload one or many radiographs (drag and drop or file picker), a progress bar per file, then the result.
// Each file is its own POST /predict (with ?preview=true, so the page can show the radiograph as the
// service decoded it, DICOM included): each gets its own progress bar and its result as soon as it is ready.

import { upload } from "./api.js";
import { $, announce, capitalise, errorContent, focusHeading, formatBytes, h, hideMessage, icon, percent } from "./dom.js";
import { renderResult, resultSentence } from "./result.js";
import { describeError, labelWords } from "./words.js";

const CONCURRENCY = 2;
const MAX_FILES = 50;
const PREVIEW_CACHE = 40;

// Previews of this tab's uploads, by prediction id (memory only), so the history can show the radiograph
// even when the service does not keep images.
export const previews = new Map();

let context = { canReview: false };
let current = null; // the result on screen: {dispose}
const pending = [];
let running = 0;
let batch = { total: 0, done: 0, accepted: 0, refused: 0, failed: 0 };
let generation = 0; // bumped on sign-out: uploads still in flight then change nothing on the page

export function setAnalyseContext(next) {
  context = next;
}

export function rememberPreview(id, dataUrl) {
  if (!dataUrl) return;
  previews.delete(id);
  previews.set(id, dataUrl);
  while (previews.size > PREVIEW_CACHE) previews.delete(previews.keys().next().value);
}

export function resetAnalyse() {
  generation += 1;
  running = 0;
  batch = { total: 0, done: 0, accepted: 0, refused: 0, failed: 0 };
  if (current) current.dispose();
  current = null;
  pending.length = 0;
  previews.clear();
  $("#queue").replaceChildren();
  $("#queue-section").hidden = true;
  $("#analyse-result").replaceChildren();
  hideMessage($("#upload-error"));
}

export function initAnalyse() {
  const input = $("#file-input");
  const zone = $("#dropzone");
  input.addEventListener("change", () => {
    addFiles(Array.from(input.files || []));
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "dragend"]) {
    zone.addEventListener(name, (event) => {
      if (event.target === zone || !zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
    });
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    addFiles(Array.from(event.dataTransfer?.files || []));
  });
  // A file dropped beside the zone must not make the browser navigate away (and lose the session).
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}

function addFiles(files) {
  const box = $("#upload-error");
  hideMessage(box);
  if (!files.length) return;
  if (files.length > MAX_FILES) {
    box.replaceChildren(errorContent({
      title: "Too many files",
      text: `${files.length} files were chosen; send at most ${MAX_FILES} at a time.`,
    }));
    box.className = "message error";
    box.hidden = false;
    return;
  }
  const queue = $("#queue");
  if (batch.done === batch.total) {
    queue.replaceChildren();
    batch = { total: 0, done: 0, accepted: 0, refused: 0, failed: 0 };
  }
  $("#queue-section").hidden = false;
  const single = files.length === 1 && batch.total === 0;
  batch.total += files.length;
  for (const file of files) {
    const item = queueItem(file);
    queue.append(item.el);
    pending.push({ file, item, single });
  }
  $("#queue-title").textContent = batch.total > 1 ? `Uploads: ${batch.done} of ${batch.total} done` : "Upload";
  announce(files.length === 1 ? `Analysing ${files[0].name}.` : `Analysing ${files.length} files.`);
  pump();
}

function queueItem(file) {
  const bar = h("progress", { max: "100", value: "0", "aria-label": `Progress of ${file.name}` });
  const status = h("p", { class: "q-status" }, "Waiting…");
  const action = h("div", { class: "q-action" });
  const el = h(
    "li",
    { class: "q-item", "data-state": "waiting" },
    h("div", { class: "q-head" },
      h("span", { class: "q-name" }, file.name || "unnamed file"),
      h("span", { class: "q-size" }, formatBytes(file.size))),
    bar,
    h("div", { class: "q-foot" }, status, action),
  );
  return { el, bar, status, action };
}

function pump() {
  while (running < CONCURRENCY && pending.length) {
    const job = pending.shift();
    const mine = generation;
    running += 1;
    run(job, mine).finally(() => {
      if (mine !== generation) return;
      running -= 1;
      pump();
    });
  }
}

async function run({ file, item, single }, mine) {
  const stale = () => mine !== generation;
  const set = (state, text) => {
    item.el.dataset.state = state;
    item.status.replaceChildren(...(Array.isArray(text) ? text : [text]));
  };
  set("uploading", "Uploading…");
  try {
    const prediction = await upload("predict", "file", file, {
      query: { source: "web", preview: "true" },
      onProgress: (fraction) => {
        item.bar.value = Math.round(fraction * 90);
        set("uploading", `Uploading ${percent(fraction)}`);
      },
      onSent: () => {
        item.bar.value = 90;
        set("analysing", "Analysing…");
      },
    });
    if (stale()) return;
    item.bar.value = 100;
    rememberPreview(prediction.id, prediction.preview);
    batch.accepted += 1;
    // Outside the training population the queue, like the result, leads with that, not with the label.
    const lead = prediction.outside_population
      ? "Outside the population this model was trained for"
      : labelWords(prediction.label);
    const summary = `${lead} · ${percent(prediction.p_pneumonia)}${prediction.refer ? " · refer to a radiologist" : ""}`;
    item.el.dataset.refer = String(prediction.refer);
    set("done", [icon(prediction.refer ? "warning" : "done", "q-icon"), h("span", null, summary)]);
    const view = h("button", { type: "button", class: "button secondary small" }, "View result");
    view.setAttribute("aria-label", `View result for ${file.name}`);
    view.addEventListener("click", () => show(prediction, file.name, item));
    item.action.replaceChildren(view);
    if (single) show(prediction, file.name, item);
  } catch (error) {
    if (stale()) return;
    item.bar.value = 100;
    const words = describeError(error);
    if (words.refusal) batch.refused += 1;
    else batch.failed += 1;
    // One file: the panel below says it all. Several: each item carries its own reason.
    set(words.refusal ? "refused" : "error",
      [icon("refused", "q-icon"), h("span", null, h("strong", null, words.title), single ? null : ` — ${words.text}`)]);
    if (single) showRefusal(file, words);
  } finally {
    if (!stale()) finish();
  }

  function finish() {
    batch.done += 1;
    if (batch.done === batch.total && batch.total > 1) {
      const parts = [`${batch.accepted} analysed`];
      if (batch.refused) parts.push(`${batch.refused} refused`);
      if (batch.failed) parts.push(`${batch.failed} failed`);
      $("#queue-title").textContent = `Uploads: ${parts.join(", ")}`;
      announce(`All ${batch.total} files done: ${parts.join(", ")}.`);
    } else if (batch.total > 1) {
      $("#queue-title").textContent = `Uploads: ${batch.done} of ${batch.total} done`;
    } else {
      $("#queue-title").textContent = "Upload";
    }
  }
}

function show(prediction, fileName, item) {
  if (current) current.dispose();
  const host = $("#analyse-result");
  current = renderResult(host, prediction, {
    preview: prediction.preview || previews.get(prediction.id),
    canReview: context.canReview,
    fileName,
  });
  for (const other of $("#queue").children) {
    other.classList.toggle("selected", other === item.el);
    const button = other.querySelector(".q-action button");
    if (button) {
      button.textContent = other === item.el ? "Shown below" : "View result";
      button.setAttribute("aria-pressed", String(other === item.el));
    }
  }
  current.reveal();
  announce(resultSentence(prediction, fileName));
}

function showRefusal(file, words) {
  if (current) current.dispose();
  current = null;
  for (const other of $("#queue").children) other.classList.remove("selected");
  const host = $("#analyse-result");
  const heading = h("h2", { class: "refusal-title" }, words.title);
  host.replaceChildren(
    h(
      "div",
      { class: `refusal ${words.refusal ? "" : "failure"}`, role: "alert", "data-testid": "refusal" },
      icon("refused", "refusal-icon"),
      h(
        "div",
        { class: "refusal-body" },
        heading,
        h("p", { class: "refusal-file" }, file.name),
        h("p", { class: "refusal-text" }, words.text),
        words.detail ? h("p", { class: "message-detail" }, `Service says: ${capitalise(words.detail)}.`) : null,
        words.refusal
          ? h("p", null, "Upload a frontal (PA or AP) chest radiograph as PNG, JPEG or DICOM. No record of a result was made; the refusal is in the audit trail.")
          : null,
        words.requestId ? h("p", { class: "message-ref" }, `Reference: ${words.requestId}`) : null,
      ),
    ),
  );
  focusHeading(heading);
}
