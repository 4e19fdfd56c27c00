"""The model card, rendered from model.json so that it can never disagree with the package."""

from __future__ import annotations

from pathlib import Path
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


def _dvc_lines(dvc: Any) -> list[str]:
    """Where the data's version is kept, when it was DVC-tracked (the manifest hash says what was read)."""
    if not isinstance(dvc, dict) or not dvc.get("md5"):
        return []
    revision = dvc.get("git_revision")
    where = (
        f" at git revision `{revision}`" + (" (with uncommitted changes)" if dvc.get("git_dirty") else "")
        if revision
        else " (not in a git repository)"
    )
    return ["", f"Data under DVC: md5 `{dvc['md5']}` from `{Path(str(dvc.get('source', ''))).name}`{where}."]


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
        f"- Input: {manifest.preprocess.size}x{manifest.preprocess.size}, resize `{manifest.preprocess.resize}`,"
        + (" 256-level histogram equalisation," if manifest.preprocess.intensity == "equalize" else "")
        + f" grey replicated to {manifest.preprocess.channels} channels, ImageNet mean/std"
        f" (preprocessing v{manifest.preprocess.version}).",
        f"- `model.onnx` sha256 `{manifest.onnx_sha256}`.",
        "",
        "## Data",
        "",
        "Kermany et al. 2018 (Mendeley Data v2, CC BY 4.0): anterior-posterior chest radiographs of",
        "children aged 1–5 from Guangzhou Women and Children's Medical Center, resized to 224x224 (squashed).",
        f"Dataset version `{training.get('dataset_version', '?')}`. Validation was carved out of the official",
        (
            "train split **by patient**: the earliest patient ids of every series (those next to the test split's,"
            " which holds the earliest patients; docs/training.md); the official test split was used"
            if cfg.get("val_strategy") == "earliest"
            else f"train split **by patient** (stratified, seed {cfg.get('seed', '?')}); the official test split was used"
        ),
        "only for the report below, never for choosing the model, threshold, temperature or quantile.",
        *(
            [
                f"The latest patients of every class and id series ({_pct(cfg['shift_holdout'])} of what validation"
                " left) were held out from training and from every fit: the shift hold-out, a second acquisition"
                " period scored once after packaging (`--split shift-holdout`)."
            ]
            if cfg.get("shift_holdout")
            else []
        ),
        *_dvc_lines(training.get("dataset_dvc")),
        "",
        "| side | images | patients | normal | bacterial | viral |",
        "|---|---|---|---|---|---|",
    ]
    for side in [s for s in ("train", "val", "shift_holdout") if s in counts]:
        c = counts[side]
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
        _refer_rule(manifest),
        f"- Out-of-distribution gate: Mahalanobis distance of pooled features to the training set (Ledoit-Wolf"
        f" covariance). Above {cal.ood_threshold:.2f} (the {cal.ood_percentile}th validation percentile) an image is"
        f" *atypical*: answered, flagged and referred; above {cal.ood_refuse_threshold:.2f}"
        f"{_refuse_source(cfg, training)} it is refused.",
        *_population_lines(manifest),
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
        by_class = test.get("conformal_coverage_by_class") or {}
        lines += [
            f"Answered with no refer flag: {_pct(test.get('unflagged_rate'))}; flagged atypical "
            f"{_pct(test.get('atypical_rate'))}; refused {_pct(test.get('refusal_rate'))}. Conformal coverage per"
            f" class: normal {_pct(by_class.get('normal'))}, pneumonia {_pct(by_class.get('pneumonia'))}.",
            "",
        ]
    else:
        lines += ["No test-split evaluation is recorded in this package yet (`cxr evaluate --record`).", ""]
    lines += _other_evaluations(manifest, test)
    lines += _lineage_lines(manifest)
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
        *_how_made_lines(training, cfg),
        *([str(training["notes"]), ""] if training.get("notes") else []),
        "Training config"
        + (" (of the first member)" if training.get("ensemble") else "")
        + (" (the soup's post-training settings)" if training.get("soup") else "")
        + ":",
        "",
        "```yaml",
        *[f"{k}: {v}" for k, v in cfg.items()],
        "```",
        "",
    ]
    return "\n".join(lines)


def _training_lines(training: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    return [
        "```",
        f"cxr train --data {training.get('data_source', '../shared/data/kermany')} --config <this config> --out runs/<name>",
        "```",
        "",
        f"Best epoch {training.get('best_epoch', '?')} of {cfg.get('epochs', '?')}; ONNX parity with PyTorch: max "
        f"|logit diff| {training.get('onnx_parity_max_abs_diff', float('nan')):.1e}.",
        "",
    ]


def _how_made_lines(training: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    if training.get("ensemble"):
        return _ensemble_lines(training)
    if training.get("soup"):
        return _soup_lines(training)
    return _training_lines(training, cfg)


def _soup_lines(training: dict[str, Any]) -> list[str]:
    """A soup was averaged from trained runs, not trained: say from which, and what was kept."""
    record = training["soup"]
    ingredients = record.get("ingredients", [])
    return [
        "```",
        "cxr soup "
        + " ".join(f"--run <{i.get('run', '?')}>" for i in ingredients)
        + f" --data {training.get('data_source', '../shared/data/kermany')} --version <version> --out <package>",
        "```",
        "",
        f"One network whose weights are the mean of {record.get('kept', '?')} trained runs' weights: "
        f"{record.get('method', '')}. Scaled validation NLL of the soup: "
        f"{float(record.get('scaled_val_nll', float('nan'))):.4f}. Temperature, threshold, conformal quantiles, OOD"
        " reference, population gate and heatmap scale were fitted on it over the runs' shared validation"
        " hold-out. Ingredients, in the order tried:",
        "",
        *[
            f"- `{i.get('run')}` ({i.get('version')}, seed {i.get('seed')}, best epoch {i.get('best_epoch')}): "
            f"own NLL {float(i.get('own_scaled_val_nll', float('nan'))):.4f}, soup with it "
            f"{float(i.get('soup_scaled_val_nll_when_tried', float('nan'))):.4f}, "
            + ("kept" if i.get("kept") else "left out")
            for i in ingredients
        ],
        "",
        f"ONNX parity with PyTorch: max |logit diff| {training.get('onnx_parity_max_abs_diff', float('nan')):.1e}.",
        "",
    ]


def _ensemble_lines(training: dict[str, Any]) -> list[str]:
    """An ensemble was composed from trained packages, not trained: say from which, and how."""
    record = training["ensemble"]
    members = record.get("members", [])
    return [
        "```",
        "cxr ensemble "
        + " ".join(f"--member <{m.get('model_id', '?')}>" for m in members)
        + f" --data {training.get('data_source', '../shared/data/kermany')} --version <version> --out <package>"
        + (" --int8" if record.get("int8") else ""),
        "```",
        "",
        f"An ensemble of {len(members)} trained packages, their weights unchanged: {record.get('combination', '')}."
        " Temperature, threshold, conformal quantiles, OOD reference, population gate and heatmap scale were"
        " fitted on the composed graph over the members' shared validation hold-out. Members:",
        "",
        *[
            f"- `{m.get('model_id')}` (seed {m.get('seed')}, best epoch {m.get('best_epoch')}, "
            f"T={float(m.get('temperature', float('nan'))):.3f}, digest `{str(m.get('digest', ''))[:16]}`)"
            for m in members
        ],
        "",
        f"The composed graph matches the mean of its members' scaled logits within "
        f"{float(record.get('composition_max_abs_diff', float('nan'))):.1e}.",
        "",
        *(_int8_lines(record["int8"]) if record.get("int8") else []),
    ]


def _int8_lines(int8: dict[str, Any]) -> list[str]:
    return [
        f"Served in int8: {int8.get('method', '')}; calibrated on {int8.get('calibration_images', '?')} images of the"
        f" {int8.get('calibration_source', 'training split')}. Quantization moved the logits by up to"
        f" {float(int8.get('max_abs_logit_change', float('nan'))):.2f} on validation images; every number in this"
        " card is the int8 graph's.",
        "",
    ]


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


def _refer_rule(manifest: PackageManifest) -> str:
    cal = manifest.calibration
    coverage = f"{100 * (1 - cal.conformal_alpha):.0f}%"
    if cal.conformal_quantiles:
        per_class = ", ".join(f"{k} {v:.4f}" for k, v in cal.conformal_quantiles.items())
        how = f"class-conditional (Mondrian) split-conformal prediction set, {coverage} coverage for each class (quantiles {per_class})"
    else:
        how = f"split-conformal prediction set at {coverage} coverage (quantile {cal.conformal_quantile:.4f})"
    return f"- Refer flag: {how}; *refer* when the set holds both normal and pneumonia, or neither."


def _other_evaluations(manifest: PackageManifest, headline: dict[str, Any] | None) -> list[str]:
    """Every other recorded evaluation (other datasets, e.g. a population the model never saw), side
    by side with the headline one."""
    others = [e for e in manifest.evaluations.values() if e is not headline]
    if not others:
        return []
    rows = [e for e in [headline, *others] if e]
    lines = [
        "### Every recorded evaluation, side by side",
        "",
        "| data | images | AUROC (95% CI) | sensitivity | specificity | ECE | refer rate | answered, no flag | refused |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in rows:
        b = e.get("pneumonia", {})
        ci = b.get("auroc_ci95") or [float("nan"), float("nan")]
        lines.append(
            f"| `{e.get('data', '?')}` ({e.get('split', '?')}) | {e.get('images', '?')} | {_num(b.get('auroc'))}"
            f" ({_num(ci[0])}–{_num(ci[1])}) | {_pct(b.get('sensitivity'))}{_ci(b.get('sensitivity_ci95'))} |"
            f" {_pct(b.get('specificity'))}{_ci(b.get('specificity_ci95'))} | {_num(e.get('ece'))} |"
            f" {_pct(e.get('refer_rate'))} | {_pct(e.get('unflagged_rate'))} | {_pct(e.get('refusal_rate'))} |"
        )
    lines += ["", *[f"- `{e.get('data')}`: {e['note']}" for e in rows if e.get("note")], ""]
    return lines


def _population_lines(manifest: PackageManifest) -> list[str]:
    pop, training = manifest.population, manifest.training
    lines = []
    if pop.age_years or pop.modalities or pop.views:
        parts = []
        if pop.age_years:
            parts.append(f"PatientAge from {pop.age_years[0]:g} to under {pop.age_years[1]:g} years")
        if pop.modalities:
            parts.append(f"modality {'/'.join(pop.modalities)}")
        if pop.views:
            parts.append(f"view {'/'.join(pop.views)}")
        lines.append(
            f"- Intended population ({pop.description or 'as trained'}): a DICOM outside it ({', '.join(parts)}) is"
            " answered but flagged `outside_intended_population` and referred; every door leads with that warning."
        )
    gate = training.get("population_gate")
    if gate:
        lines.append(
            f"- Population gate: a logistic in/out classifier on the pooled features, fitted on the training images"
            f" against {gate['fit_images']} radiographs of another population (`{gate['outliers']}`, split by patient,"
            f" seed {gate['seed']}: {gate['untouched_images']} images were never fitted on, and only they are used to"
            f" measure it). Above p {gate['threshold']:.2f} an image is flagged atypical and referred."
        )
    if manifest.calibration.heatmap_reference is not None:
        lines.append(
            f"- Heatmaps on one scale: full heat is a raw Grad-CAM value of {manifest.calibration.heatmap_reference:.4g}"
            f" ({training.get('heatmap_reference', 'fixed in the package')}), the same on every image, so a normal"
            " radiograph shows little heat; each prediction keeps its raw peak beside the scale."
        )
    return lines


def _lineage_lines(manifest: PackageManifest) -> list[str]:
    parent = manifest.parent
    if not parent:
        return []
    lines = [
        "## Lineage",
        "",
        f"{parent.get('relation', 'derived').capitalize()} from `{parent.get('model_id', '?')}` (package digest"
        f" `{parent.get('digest', '?')}`).",
    ]
    data = parent.get("recalibrated_on")
    if data:
        fitted = manifest.metrics.get("recalibration", {}).get("fitted_on_site_cases", {})
        lines += [
            f"Temperature, threshold and conformal quantile(s) refitted on `{data.get('data_source')}` (dataset"
            f" version `{data.get('dataset_version')}`, {data.get('images')} images: {data.get('normal')} normal,"
            f" {data.get('pneumonia')} pneumonia); weights and out-of-distribution references unchanged. On those"
            f" cases: sensitivity {_pct(fitted.get('sensitivity_at_threshold'))}, specificity"
            f" {_pct(fitted.get('specificity_at_threshold'))}, ECE {_num(fitted.get('ece_before'))} before and"
            f" {_num(fitted.get('ece_after'))} after. The parent's evaluations do not describe this decision rule"
            " and are not carried over.",
        ]
    return [*lines, ""]


def _refuse_source(cfg: dict[str, Any], training: dict[str, Any]) -> str:
    """Where the refusal distance came from, when it is not a plain factor of the atypical one."""
    percentile = float(cfg.get("ood_refuse_outlier_percentile") or 0)
    gate = training.get("population_gate") or {}
    if percentile > 0 and gate.get("fit_images"):
        return (
            f" (the {percentile:g}th percentile of the {gate['fit_images']} fitted population-gate outliers'"
            " distances: further than almost every radiograph of another population)"
        )
    return ""
