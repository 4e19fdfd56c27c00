// The result view: the radiograph large with the heatmap over it, and the answer beside it in words.

import { fetchBlob, request } from "./api.js";
import { announce, capitalise, errorContent, formatDateTime, h, icon, percent, setBusy, showError } from "./dom.js";
import { describeError, FINDING_WORDS, labelWords, sourceWords, subtypeWords } from "./words.js";

// The service's colour map (inference/heatmap.py `_jet`): blue, cyan, yellow, red.
const STOPS = [
  [0, 0, 128], [0, 128, 255], [0, 230, 230], [255, 230, 0], [255, 64, 0], [200, 0, 0],
];
const LUT = buildLut();
const DEFAULT_OPACITY = 55;
let sequence = 0;

function buildLut() {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i += 1) {
    const t = (i / 255) * (STOPS.length - 1);
    const k = Math.min(STOPS.length - 2, Math.floor(t));
    const f = t - k;
    for (let c = 0; c < 3; c += 1) lut[i * 3 + c] = STOPS[k][c] + (STOPS[k + 1][c] - STOPS[k][c]) * f;
  }
  return lut;
}

/** The heatmap intensity in [0, 255] of one pixel: grey as is, a colour-mapped one by nearest map entry. */
function intensity(r, g, b, cache) {
  if (r === g && g === b) return r;
  const key = (r << 16) | (g << 8) | b;
  let value = cache.get(key);
  if (value === undefined) {
    let best = 0;
    let bestDistance = Infinity;
    for (let i = 0; i < 256; i += 1) {
      const dr = LUT[i * 3] - r;
      const dg = LUT[i * 3 + 1] - g;
      const db = LUT[i * 3 + 2] - b;
      const distance = dr * dr + dg * dg + db * db;
      if (distance < bestDistance) {
        bestDistance = distance;
        best = i;
      }
    }
    value = best;
    cache.set(key, value);
  }
  return value;
}

/** Draw the heatmap PNG into the canvas: colour-mapped, transparent where the model did not look. */
async function paintHeatmap(canvas, blob) {
  const bitmap = await createImageBitmap(blob);
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const image = context.getImageData(0, 0, canvas.width, canvas.height);
  const px = image.data;
  const cache = new Map();
  for (let i = 0; i < px.length; i += 4) {
    const v = intensity(px[i], px[i + 1], px[i + 2], cache);
    px[i] = LUT[v * 3];
    px[i + 1] = LUT[v * 3 + 1];
    px[i + 2] = LUT[v * 3 + 2];
    px[i + 3] = Math.min(255, Math.round(v * 1.6)); // cold regions stay see-through
  }
  context.putImageData(image, 0, 0);
}

function referText(prediction) {
  const set = prediction.prediction_set || [];
  const atypical = (prediction.findings || []).some(
    (f) => f.code === "atypical_input" || f.code === "outside_intended_population");
  if (atypical && set.length === 1) {
    return "This image is unlike the chest X-rays the model learnt from (children aged 1–5), so its answer may not hold. A radiologist should read it.";
  }
  if (set.length === 0) {
    return "Neither “normal” nor “pneumonia” fits this image well enough. A radiologist should read it.";
  }
  return "The model cannot separate “normal” from “pneumonia” with enough confidence on this image. A radiologist should read it.";
}

function probabilityMeter(prediction) {
  const p = prediction.p_pneumonia;
  const t = prediction.threshold;
  const above = prediction.label === "pneumonia";
  return h(
    "div",
    { class: "prob" },
    h("div", { class: "prob-head" },
      h("span", { class: "prob-label", id: `prob-label-${prediction.id}` }, "Probability of pneumonia"),
      h("strong", { class: "prob-value", "data-testid": "probability" }, percent(p))),
    h(
      "div",
      {
        class: `meter ${above ? "above" : "below"}`,
        role: "meter",
        "aria-labelledby": `prob-label-${prediction.id}`,
        "aria-valuemin": "0",
        "aria-valuemax": "100",
        "aria-valuenow": (p * 100).toFixed(0),
        "aria-valuetext": `${percent(p)}; the decision threshold is ${percent(t)}`,
      },
      h("div", { class: "meter-fill", style: { width: `${Math.max(0.5, p * 100)}%` } }),
      h("div", { class: "meter-threshold", style: { left: `${t * 100}%` }, title: `Threshold ${percent(t)}` }),
    ),
    h("div", { class: "meter-scale", "aria-hidden": "true" },
      h("span", { class: t < 0.16 ? "invisible" : null }, "0%"),
      h("span", { class: "meter-threshold-label", style: { left: `${Math.min(88, Math.max(12, t * 100))}%` } },
        `threshold ${percent(t)}`),
      h("span", { class: t > 0.84 ? "invisible" : null }, "100%")),
    h("p", { class: "hint" },
      `Calibrated probability. At or above the threshold (${percent(t)}) the result is “pneumonia”.`),
  );
}

// Below this share of the pneumonia probability, "bacterial" vs "viral" is not worth a word.
const SUBTYPE_CONFIDENT = 0.6;

function subtypeBlock(prediction) {
  if (prediction.label !== "pneumonia" || !prediction.subtype) return null;
  const pb = prediction.p_bacterial;
  const pv = prediction.p_viral;
  const total = pb + pv || 1;
  const share = prediction.subtype_confidence;
  const line = share >= SUBTYPE_CONFIDENT
    ? h("p", { class: "subtype-line" },
        h("span", { class: "subtype-name", "data-testid": "subtype" }, capitalise(subtypeWords(prediction.subtype))),
        ` more likely: ${percent(share)} of the pneumonia probability.`)
    : h("p", { class: "subtype-line" },
        h("span", { class: "subtype-name", "data-testid": "subtype" }, "Bacterial or viral: uncertain"),
        " — the model cannot tell the two patterns apart on this image.");
  return h(
    "div",
    { class: "subtype", "data-subtype": prediction.subtype },
    line,
    h(
      "div",
      { class: "split", "aria-hidden": "true" },
      h("div", { class: "split-bacterial", style: { width: `${(pb / total) * 100}%` } }),
      h("div", { class: "split-viral", style: { width: `${(pv / total) * 100}%` } }),
    ),
    h("p", { class: "split-legend" },
      h("span", null, h("i", { class: "swatch swatch-bacterial", "aria-hidden": "true" }), "Bacterial"),
      h("span", null, h("i", { class: "swatch swatch-viral", "aria-hidden": "true" }), "Viral")),
    // One number on the card (the share above), explained once: two sets of percentages read as two answers.
    h("p", { class: "hint", "data-testid": "subtype-explained" },
      "The bar splits the pneumonia probability between the two patterns the model was trained on. "
      + "It is a pattern on the image, not a microbiology result."),
  );
}

/** "user:alice" -> "alice", "key:0123abcd" -> "API key 0123abcd", "cli:root" -> "command line (root)". */
export function callerWords(caller) {
  const [kind, ...rest] = String(caller || "").split(":");
  const name = rest.join(":");
  if (kind === "user") return name;
  if (kind === "key") return `API key ${name}`;
  if (kind === "cli") return `command line (${name})`;
  return caller;
}

function findingsBlock(prediction) {
  const findings = (prediction.findings || []).filter((f) => f.severity === "warning" || f.severity === "info");
  if (!findings.length) return null;
  return h(
    "div",
    { class: "findings" },
    h("h3", null, "Notes on this image"),
    h("ul", null, findings.map((f) => h("li", { class: f.severity }, FINDING_WORDS[f.code] || capitalise(f.detail)))),
  );
}

function imageWords(meta) {
  if (!meta) return "–";
  const kind = { dicom: "DICOM", png: "PNG", jpeg: "JPEG", tiff: "TIFF" }[meta.format] || String(meta.format || "").toUpperCase();
  const parts = [`${kind}, ${meta.width} × ${meta.height} px`];
  if (meta.modality) parts.push(meta.modality);
  if (meta.view_position) parts.push(`view ${meta.view_position}`);
  return parts.join(", ");
}

function factsBlock(prediction, fileName) {
  const model = prediction.model || {};
  const rows = [
    ...(fileName ? [["File", fileName]] : []),
    ["Model", `${model.name} ${model.version}`],
    ["Analysed", formatDateTime(prediction.created_at)],
    ["Image", imageWords(prediction.input_meta)],
    ["Source", `${sourceWords(prediction.source)} · ${callerWords(prediction.caller)}`],
    ["Reference", prediction.id],
  ];
  return h(
    "dl",
    { class: "facts" },
    rows.map(([term, value]) => [h("dt", null, term), h("dd", { class: term === "Reference" ? "mono" : null }, value)]),
  );
}

function technicalBlock(prediction) {
  const model = prediction.model || {};
  const t = prediction.timings_ms || {};
  const rows = [
    ["Model sha256", model.sha256],
    ["Preprocessing", `version ${model.preprocess_version}`],
    ["Conformal prediction set", (prediction.prediction_set || []).join(", ") || "empty"],
    ["Distribution score", `${Number(prediction.ood_score).toFixed(2)} (refused above ${Number(prediction.ood_threshold).toFixed(2)})`],
    ["Input sha256", prediction.input_sha256],
    ["Time", `${Math.round(t.total_ms || 0)} ms${prediction.cached ? " (cached result)" : ""}`],
  ];
  return h(
    "details",
    { class: "technical" },
    h("summary", null, "Technical details"),
    h("dl", { class: "facts small" }, rows.map(([term, value]) => [h("dt", null, term), h("dd", { class: "mono" }, value)])),
  );
}

function reviewLine(review) {
  const what = review.label === "pneumonia"
    ? `Pneumonia${review.subtype ? ` (${review.subtype})` : ""}`
    : "No pneumonia";
  return h(
    "li",
    { class: review.agrees ? "agrees" : "disagrees" },
    h("strong", null, what),
    ` — ${callerWords(review.reviewer)}, ${formatDateTime(review.created_at)}. `,
    h("span", { class: "agreement" }, review.agrees ? "Agrees with the model." : "Differs from the model."),
  );
}

function reviewBlock(prediction, { canReview, onReviewed }) {
  const reviews = prediction.reviews || [];
  const list = h("ul", { class: "reviews" }, reviews.map(reviewLine));
  const section = h(
    "section",
    { class: "review", "aria-labelledby": `review-title-${prediction.id}` },
    h("h3", { id: `review-title-${prediction.id}` }, "Clinician review"),
    reviews.length ? list : h("p", { class: "hint", "data-empty": "" }, "Not reviewed yet."),
  );
  if (!canReview) return section;

  const n = (sequence += 1);
  const status = h("div", { class: "message", role: "status", hidden: true });
  const subtypeSet = h(
    "fieldset",
    { class: "choice subtype-choice", hidden: true },
    h("legend", null, "Pattern (optional)"),
    radio(`rv-sub-${n}`, "subtype", "", "Not determined", true),
    radio(`rv-sub-${n}`, "subtype", "bacterial", "Bacterial"),
    radio(`rv-sub-${n}`, "subtype", "viral", "Viral"),
  );
  const submit = h("button", { type: "submit", class: "button primary" }, "Record review");
  const form = h(
    "form",
    { class: "review-form", novalidate: true },
    h(
      "fieldset",
      { class: "choice" },
      h("legend", null, "Confirmed finding"),
      radio(`rv-label-${n}`, "label", "normal", "No pneumonia"),
      radio(`rv-label-${n}`, "label", "pneumonia", "Pneumonia"),
    ),
    subtypeSet,
    submit,
    status,
  );
  form.addEventListener("change", () => {
    subtypeSet.hidden = form.elements.label.value !== "pneumonia";
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const label = form.elements.label.value;
    if (!label) {
      status.className = "message error";
      status.hidden = false;
      status.replaceChildren(h("p", null, "Choose the confirmed finding first."));
      return;
    }
    const subtype = label === "pneumonia" && form.elements.subtype.value ? form.elements.subtype.value : null;
    setBusy(submit, true, "Recording…");
    try {
      const review = await request(`predictions/${prediction.id}/review`, { method: "POST", json: { label, subtype } });
      prediction.reviews = [...(prediction.reviews || []), review];
      section.querySelector("[data-empty]")?.remove();
      if (!list.isConnected) section.insertBefore(list, form);
      list.append(reviewLine(review));
      form.reset();
      subtypeSet.hidden = true;
      status.className = "message success";
      status.hidden = false;
      status.replaceChildren(h("p", null, `Review recorded: ${label === "pneumonia" ? "pneumonia" : "no pneumonia"}.`));
      announce("Review recorded.");
      if (onReviewed) onReviewed(prediction, review);
    } catch (error) {
      showError(status, error, "The review was not recorded");
    } finally {
      setBusy(submit, false);
    }
  });
  section.append(form);
  return section;
}

function radio(name, field, value, text, checked = false) {
  const id = `${name}-${value || "none"}`;
  return h(
    "div",
    { class: "radio" },
    h("input", { type: "radio", id, name: field, value, checked }),
    h("label", { for: id }, text),
  );
}

/** One sentence for screen readers: what the page shows when a result arrives. */
export function resultSentence(prediction, fileName) {
  const parts = [`${labelWords(prediction.label)}`, `probability of pneumonia ${percent(prediction.p_pneumonia)}`];
  if (prediction.refer) parts.push("refer to a radiologist");
  return `Result${fileName ? ` for ${fileName}` : ""}: ${parts.join(", ")}.`;
}

/**
 * Render one prediction into host. options: {preview (data URL), fileName, canReview, onReviewed, heading}.
 * Returns {heading (to focus), dispose() (releases the object URLs it made)}.
 */
export function renderResult(host, prediction, options = {}) {
  const urls = [];
  const n = (sequence += 1);
  const meta = prediction.input_meta || {};
  const aspect = meta.width && meta.height ? `${meta.width} / ${meta.height}` : "4 / 5";
  const pneumonia = prediction.label === "pneumonia";

  const img = h("img", { class: "radiograph", alt: "", decoding: "async" });
  const canvas = h("canvas", { class: "heat", "aria-hidden": "true" });
  const note = h("p", { class: "stage-note", hidden: true });
  const stage = h("div", { class: "stage", style: { aspectRatio: aspect }, "data-testid": "stage" }, img, canvas, note);
  if (meta.width && meta.height) stage.style.setProperty("--ar", String(meta.width / meta.height));

  const toggleId = `heat-toggle-${n}`;
  const sliderId = `heat-opacity-${n}`;
  const outputId = `heat-opacity-value-${n}`;
  // A package with a heatmap reference draws every map on one scale: a normal radiograph shows little heat,
  // so the map is on from the start. Older packages scale each map to its own peak, so the faint evidence
  // behind a "no pneumonia" result is drawn as hot as a consolidation: shown on request only, with a warning.
  const fixedScale = prediction.heatmap_reference != null;
  const heatOnAtFirst = pneumonia || fixedScale;
  const toggle = h("input", { type: "checkbox", id: toggleId, role: "switch", checked: heatOnAtFirst });
  const slider = h("input", {
    type: "range", id: sliderId, min: "0", max: "100", step: "5", value: String(DEFAULT_OPACITY),
    "aria-valuetext": `${DEFAULT_OPACITY}%`, "aria-describedby": `heat-legend-${n}`,
  });
  const output = h("output", { id: outputId, for: sliderId }, `${DEFAULT_OPACITY}%`);
  const applyHeat = () => {
    const value = Number(slider.value);
    canvas.style.opacity = String(value / 100);
    canvas.hidden = !toggle.checked;
    slider.disabled = !toggle.checked;
    output.textContent = `${value}%`;
    slider.setAttribute("aria-valuetext", `${value}%`);
    stage.dataset.heatmap = toggle.checked ? "on" : "off";
    legend.classList.toggle("off", !toggle.checked);
    stage.dataset.opacity = String(value);
  };
  toggle.addEventListener("change", () => {
    applyHeat();
    announce(toggle.checked ? "Heatmap shown." : "Heatmap hidden.");
  });
  slider.addEventListener("input", applyHeat);

  const controls = h(
    "div",
    { class: "viewer-controls" },
    h("div", { class: "switch" }, toggle, h("label", { for: toggleId }, "Heatmap")),
    h("div", { class: "opacity" }, h("label", { for: sliderId }, "Opacity"), slider, output),
  );
  const legend = h(
    "div",
    { class: "legend", id: `heat-legend-${n}` },
    h("span", { class: "legend-bar", "aria-hidden": "true" }),
    h("span", { class: "legend-ends", "aria-hidden": "true" }, h("span", null, "less"), h("span", null, "more")),
    h("p", { class: "legend-text" },
      "The heatmap shows where the model found evidence of pneumonia (Grad-CAM). It is not an outline of disease.",
      fixedScale
        ? h("span", { "data-testid": "heat-scale" }, " Colours mean the same on every image: full red is the heat of a clear pneumonia.")
        : null,
      heatOnAtFirst ? null : h("strong", { class: "legend-caution" },
        " With no pneumonia found, the map only stretches faint evidence to full colour, so it is off at first.")),
  );
  applyHeat();
  const viewer = h("figure", { class: "viewer" }, stage, controls, legend,
    h("figcaption", { class: "visually-hidden" }, "The radiograph with the model's heatmap over it"));

  const titleId = `result-title-${n}`;
  // Outside the training population the warning is the headline, never "Pneumonia" in red: the model's
  // numbers mean little there, and come below it.
  const outside = Boolean(prediction.outside_population);
  const heading = outside
    ? h(options.heading || "h2", { class: "verdict outside", id: titleId, "data-testid": "verdict" },
        "Outside the population this model was trained for — refer")
    : h(options.heading || "h2", { class: `verdict ${pneumonia ? "pneumonia" : "normal"}`, id: titleId,
        "data-testid": "verdict" }, labelWords(prediction.label));
  const banner = prediction.refer
    ? h("div", { class: "refer-banner", role: "alert", "data-testid": "refer" },
        icon("warning", "refer-icon"),
        h("div", null, h("p", { class: "refer-title" }, "Refer to a radiologist"), h("p", null, referText(prediction))))
    : null;
  const panel = h(
    "div",
    { class: "panel" },
    banner,
    h("p", { class: "eyebrow" }, "Model result"),
    heading,
    outside
      ? h("p", { class: "verdict-sub", "data-testid": "outside-sub" },
          `The model's own reading, for reference only: ${labelWords(prediction.label).toLowerCase()}, `,
          `probability of pneumonia ${percent(prediction.p_pneumonia)}.`)
      : pneumonia ? null : h("p", { class: "verdict-sub" }, "No radiographic sign of pneumonia found by the model."),
    subtypeBlock(prediction),
    probabilityMeter(prediction),
    findingsBlock(prediction),
    factsBlock(prediction, options.fileName),
    reviewBlock(prediction, options),
    technicalBlock(prediction),
    h("p", { class: "inline-disclaimer", "data-testid": "disclaimer" },
      prediction.disclaimer || "Decision support only, not a diagnosis: a qualified clinician must review every result."),
  );
  const article = h(
    "article",
    { class: `result ${pneumonia ? "is-pneumonia" : "is-normal"}`, "aria-labelledby": titleId,
      "data-prediction-id": prediction.id, "data-testid": "result" },
    h("div", { class: "result-grid" }, viewer, panel),
  );
  host.replaceChildren(article);

  // The radiograph: the upload's preview, else the stored image, else the heatmap alone with a note.
  const showImage = (src) => {
    img.src = src;
    img.alt = `Chest radiograph (${imageWords(meta)})`;
    stage.classList.add("has-image");
  };
  const noImage = (text) => {
    img.remove();
    note.hidden = false;
    note.textContent = text;
    stage.classList.add("no-image");
  };
  if (options.preview) {
    showImage(options.preview);
  } else if (prediction.image_url) {
    fetchBlob(prediction.image_url)
      .then((blob) => {
        const objectUrl = URL.createObjectURL(blob);
        urls.push(objectUrl);
        showImage(objectUrl);
      })
      .catch((error) => noImage(describeError(error).text));
  } else {
    noImage("This server does not keep radiographs, so only the heatmap is shown. Open the original image in your viewer to compare.");
  }

  fetchBlob(prediction.heatmap_url)
    .then((blob) => paintHeatmap(canvas, blob))
    .then(() => {
      stage.dataset.heatmapReady = "true";
    })
    .catch((error) => {
      toggle.disabled = true;
      slider.disabled = true;
      legend.replaceChildren(errorContent(describeError(error), "The heatmap could not be loaded"));
      stage.dataset.heatmapReady = "error";
    });

  return {
    heading,
    /** Focus the verdict (for keyboard and screen readers) and bring the whole result, image first, into view. */
    reveal() {
      if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
      article.scrollIntoView({ block: "start" });
    },
    dispose() {
      for (const objectUrl of urls) URL.revokeObjectURL(objectUrl);
    },
  };
}
