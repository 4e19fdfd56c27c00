"""The model card, rendered from model.json so that it can never disagree with the package."""

from __future__ import annotations

from typing import Any

from .. import DISCLAIMER
from ..package import PackageManifest


def _pct(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{100 * float(value):.1f}%"


def _ci(values: Any) -> str:
    if not values or any(v != v for v in values):
        return ""
    return f" ({100 * values[0]:.1f}–{100 * values[1]:.1f})"


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None or value != value else f"{float(value):.{digits}f}"


def render_card(manifest: PackageManifest) -> str:
    cal = manifest.calibration
    training = manifest.training
    val = manifest.metrics.get("validation", {})
    test = manifest.evaluation("test")
    counts = training.get("split_counts", {})
    cfg = training.get("config", {})
    lines = [
        f"# Model card: {manifest.name} {manifest.version}",
        "",
        f"> {DISCLAIMER}",
        "",
        "## Intended use",
        "",
        "Decision support for reading frontal (AP/PA) chest radiographs of **children aged 1–5**: the",
        "probability of pneumonia, a bacterial vs viral pattern for pneumonia, a calibrated confidence, a",
        "Grad-CAM heatmap, and a *refer to a radiologist* flag when the model is unsure. It is meant to sit",
        "beside a clinician, who makes every decision.",
        "",
        "**Not for**: adults (it was never trained on them), lateral views, CT, any other body part, screening",
        "without a clinician, ruling pneumonia out on its own, COVID-19 or tuberculosis detection, or any",
        "population or device unlike the training data without first evaluating it there (`cxr evaluate`).",
        "",
        "## Model",
        "",
        f"- Backbone: `{manifest.backbone}` ({training.get('backbone_weights', 'unknown weights')}), global",
        f"  average pooling, one linear layer over {len(manifest.classes)} classes: "
        + ", ".join(f"`{c}` ({manifest.class_meaning.get(c, '')})" for c in manifest.classes)
        + ".",
        "  p(pneumonia) = p(bacterial) + p(viral). Because the head is linear, the heatmap is exact Grad-CAM.",
        f"- Input: {manifest.preprocess.size}x{manifest.preprocess.size}, resize `{manifest.preprocess.resize}`, grey"
        f" replicated to {manifest.preprocess.channels} channels, ImageNet mean/std (preprocessing v{manifest.preprocess.version}).",
        f"- `model.onnx` sha256 `{manifest.onnx_sha256}`.",
        "",
        "## Data",
        "",
        "Kermany et al. 2018 (Mendeley Data v2, CC BY 4.0): anterior-posterior chest radiographs of",
        "children aged 1–5 from Guangzhou Women and Children's Medical Center, resized to 224x224 (squashed).",
        f"Dataset version `{training.get('dataset_version', '?')}`. Validation was carved out of the official",
        f"train split **by patient** (stratified, seed {cfg.get('seed', '?')}); the official test split was used",
        "only for the report below, never for choosing the model, threshold, temperature or quantile.",
        "",
        "| side | images | patients | normal | bacterial | viral |",
        "|---|---|---|---|---|---|",
    ]
    for side in ("train", "val"):
        c = counts.get(side, {})
        lines.append(
            f"| {side} | {c.get('images', '?')} | {c.get('patients', '?')} | {c.get('normal', 0)} | "
            f"{c.get('bacterial', 0)} | {c.get('viral', 0)} |"
        )
    lines += [
        "",
        "## Calibration and decision rule (fitted on validation only)",
        "",
        f"- Temperature scaling: T = {cal.temperature:.3f}; validation ECE (15 bins) "
        f"{_num(val.get('val_ece_before'))} before, {_num(val.get('val_ece_after'))} after.",
        f"- Threshold on calibrated p(pneumonia): {cal.threshold:.4f}, the {cal.operating_point}"
        f" (validation sensitivity {_pct(val.get('val_sensitivity_at_threshold'))}, specificity "
        f"{_pct(val.get('val_specificity_at_threshold'))}).",
        f"- Refer flag: split-conformal prediction set at {100 * (1 - cal.conformal_alpha):.0f}% coverage "
        f"(quantile {cal.conformal_quantile:.4f}); *refer* when the set holds both normal and pneumonia.",
        f"- Out-of-distribution gate: Mahalanobis distance of pooled features to the training set (Ledoit-Wolf"
        f" covariance). Above {cal.ood_threshold:.2f} (the {cal.ood_percentile}th validation percentile) an image is"
        f" *atypical*: answered, flagged and referred; above {cal.ood_refuse_threshold:.2f} it is refused.",
        "",
        "## Results",
        "",
        f"Validation (patient-level hold-out of train): AUROC {_num(val.get('val_auroc'), 4)}, "
        f"bacterial vs viral AUROC {_num(val.get('val_subtype_auroc'), 4)}.",
        "",
    ]
    if test:
        b = test["pneumonia"]
        s = test.get("subtype", {})
        lines += [
            f"Official Kermany **test split** ({b['n']} images), from `{test.get('command', 'cxr evaluate')}`"
            " (95% CIs: bootstrap for AUROC, Wilson for proportions):",
            "",
            "| metric | this model | Kermany et al. 2018 |",
            "|---|---|---|",
            f"| AUROC | {_num(b['auroc'])} ({_num(b['auroc_ci95'][0])}–{_num(b['auroc_ci95'][1])}) | 0.968 |",
            f"| accuracy | {_pct(b['accuracy'])}{_ci(b.get('accuracy_ci95'))} | 92.8% |",
            f"| sensitivity | {_pct(b['sensitivity'])}{_ci(b.get('sensitivity_ci95'))} | 93.2% |",
            f"| specificity | {_pct(b['specificity'])}{_ci(b.get('specificity_ci95'))} | 90.1% |",
            f"| PPV / NPV | {_pct(b['ppv'])} / {_pct(b['npv'])} | |",
            f"| F1 | {_num(b['f1'])} | |",
            f"| ECE / Brier | {_num(test.get('ece'))} / {_num(test.get('brier'))} | |",
            f"| refer rate / conformal coverage | {_pct(test.get('refer_rate'))} / {_pct(test.get('conformal_coverage'))} | |",
            f"| bacterial vs viral AUROC | {_num(s.get('auroc'))} | 0.940 |",
            f"| bacterial vs viral accuracy | {_pct(s.get('accuracy'))} | 90.7% |",
            "",
            f"Confusion at the threshold: {b['confusion']}.",
            "",
        ]
    else:
        lines += ["No test-split evaluation is recorded in this package yet (`cxr evaluate --record`).", ""]
    lines += [
        "## Limitations",
        "",
        *_shift_warnings(manifest),
        "- One hospital, one age band, low-resolution (224x224) squashed images: performance on adults, other",
        "  hospitals, other devices and other image sizes is unknown and likely lower.",
        "- Bacterial vs viral labels come from the dataset's clinical labels; the distinction on a radiograph",
        "  is uncertain even for experts. Treat it as a weak hint.",
        "- The threshold and refer rule were fitted on a validation set whose prevalence (about 74%",
        "  pneumonia) is far above most clinical settings: predictive values change with prevalence.",
        "- The conformal quantile and the temperature share the validation set; coverage is approximate.",
        "- The heatmap shows where the model looked, not where the disease is.",
        "",
        "## How it was made",
        "",
        "```",
        f"cxr train --data {training.get('data_source', '../shared/data/kermany')} --config <this config> --out runs/<name>",
        "```",
        "",
        *([str(training["notes"]), ""] if training.get("notes") else []),
        f"Best epoch {training.get('best_epoch', '?')} of {cfg.get('epochs', '?')}; ONNX parity with PyTorch: max "
        f"|logit diff| {training.get('onnx_parity_max_abs_diff', float('nan')):.1e}. Training config:",
        "",
        "```yaml",
        *[f"{k}: {v}" for k, v in cfg.items()],
        "```",
        "",
    ]
    return "\n".join(lines)


def _shift_warnings(manifest: PackageManifest) -> list[str]:
    """Say so where the test split fell short of what validation promised (distribution shift)."""
    test = manifest.evaluation("test")
    val = manifest.metrics.get("validation", {})
    if not test:
        return []
    out = []
    promised = 1.0 - manifest.calibration.conformal_alpha
    coverage = test.get("conformal_coverage")
    if coverage is not None and coverage < promised - 0.02:
        out.append(
            f"- The refer flag promised {promised:.0%} coverage (fitted on validation) but covered {coverage:.1%} of"
            " the test split: the official test images were collected apart from the training images, and on such"
            " data the model is over-confident and refers too few cases."
        )
    spec_val, spec_test = val.get("val_specificity_at_threshold"), test["pneumonia"].get("specificity")
    if spec_val is not None and spec_test is not None and spec_test < spec_val - 0.05:
        out.append(
            f"- Specificity fell from {spec_val:.1%} on validation to {spec_test:.1%} on test at the same threshold:"
            " expect more false alarms on normal radiographs than validation suggests."
        )
    return out
