"""Evaluate a model package on a labelled dataset, through ONNX Runtime: exactly what is served.

Every decodable image is scored (the report also says how many the quality gate would refuse, and
the metrics on the accepted ones), so the numbers describe the model, not a filtered subset.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.catalog import Manifest, ManifestRow, scan
from ..data.splits import training_holdouts
from ..errors import DataError, InputError, RejectedImage
from ..imaging import load
from ..imaging.preprocess import to_model_input
from ..imaging.xray import XRay
from ..inference.predictor import Predictor
from ..inference.quality import check_image
from .calibration import expected_calibration_error, reliability_bins
from .metrics import auroc, binary_report, brier, wilson_ci


@dataclass
class ScoredImage:
    row: ManifestRow
    probs: np.ndarray | None  # calibrated (normal, bacterial, viral); None when unreadable
    ood: float
    refusal: str | None  # the quality gate's reason, if it would refuse the image
    error: str | None  # unreadable
    logits: np.ndarray | None = None  # raw (before the package's temperature); what recalibration refits
    p_other: float | None = None  # the package's population gate, if it has one


def score_rows(
    predictor: Predictor,
    manifest: Manifest,
    rows: list[ManifestRow],
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
    adjust: Callable[[XRay], XRay] | None = None,
) -> list[ScoredImage]:
    """Score every row through the package; ``adjust`` (probes such as a reframing) changes each
    decoded radiograph before the quality gate and preprocessing see it."""
    scored: list[ScoredImage] = []
    pending: list[tuple[ScoredImage, np.ndarray]] = []

    def flush() -> None:
        if not pending:
            return
        out = predictor.run_model(np.stack([tensor for _, tensor in pending]))
        for i, (item, _) in enumerate(pending):
            item.probs, item.ood, item.logits = out.probs[i], float(out.ood[i]), out.logits[i]
            item.p_other = float(out.p_other[i]) if out.p_other is not None else None
            if item.refusal is None and item.ood > predictor.calibration.ood_refuse_threshold:
                item.refusal = "out_of_distribution"
        pending.clear()

    for index, row in enumerate(rows):
        item = ScoredImage(row, None, float("nan"), None, None)
        scored.append(item)
        try:
            xray = load(manifest.absolute(row), predictor.limits)
        except InputError as exc:
            item.error = exc.code
        else:
            if adjust is not None:
                xray = adjust(xray)
            try:
                check_image(xray, predictor.min_side)
            except RejectedImage as exc:
                item.refusal = exc.reason
            pending.append((item, to_model_input(xray, predictor.spec)))
            if len(pending) >= batch_size:
                flush()
        if progress is not None:
            progress(index + 1)
    flush()
    return scored


def is_referred(predictor: Predictor, item: ScoredImage) -> bool:
    """The refer flag the Predictor would raise for this scored image (unsure, or atypical)."""
    assert item.probs is not None
    return predictor.decide(float(item.probs[1] + item.probs[2]))[2] or is_atypical(predictor, item)


def is_atypical(predictor: Predictor, item: ScoredImage) -> bool:
    try:
        return predictor.atypical_finding(item.ood, item.p_other) is not None
    except RejectedImage:
        return False  # refused, not atypical: counted apart


def answer_rates(predictor: Predictor, items: list[ScoredImage]) -> dict[str, float]:
    """Over every input: answered without a refer flag (``unflagged_rate``: what a clinician would
    take at face value), answered and referred, refused by the gate, unreadable."""
    total = max(len(items), 1)
    answered = [i for i in items if i.probs is not None and i.refusal is None]
    referred = sum(1 for i in answered if is_referred(predictor, i))
    return {
        "unflagged_rate": (len(answered) - referred) / total,
        "answered_referred_rate": referred / total,
        "refused_rate": sum(1 for i in items if i.refusal) / total,
        "unreadable_rate": sum(1 for i in items if i.error) / total,
    }


def metrics_for(predictor: Predictor, items: list[ScoredImage]) -> dict[str, Any]:
    """Binary pneumonia metrics at the package threshold, calibration, refer rate, coverage, subtype."""
    items = [i for i in items if i.probs is not None]
    if not items:
        raise DataError("no image could be scored", code="data_empty")
    probs = np.stack([i.probs for i in items if i.probs is not None])
    y = np.array([1 if i.row.label == "pneumonia" else 0 for i in items])
    p = probs[:, 1] + probs[:, 2]
    decisions = [predictor.decide(float(v)) for v in p]
    atypical = np.array([is_atypical(predictor, i) for i in items])
    refer = np.array([d[2] for d in decisions]) | atypical
    covered = np.array(
        [("pneumonia" if y_i else "normal") in d[1] for y_i, d in zip(y, decisions, strict=True)]
    )
    report: dict[str, Any] = {
        "pneumonia": binary_report(y, p, predictor.calibration.threshold),
        "ece": expected_calibration_error(y, p),
        "brier": brier(y, p),
        "refer_rate": float(refer.mean()),
        "atypical_rate": float(atypical.mean()),
        "conformal_coverage": float(covered.mean()),
        "conformal_coverage_ci95": list(wilson_ci(int(covered.sum()), len(covered))),
        # Mondrian conformal promises each class its own coverage: report it per class
        "conformal_coverage_by_class": {
            name: float(covered[y == value].mean()) if (y == value).any() else None
            for name, value in (("normal", 0), ("pneumonia", 1))
        },
        "reliability": reliability_bins(y, p),
    }
    if (~refer).any():
        report["accuracy_when_not_referred"] = float(
            ((p[~refer] >= predictor.calibration.threshold).astype(int) == y[~refer]).mean()
        )
    subtype_rows = [
        (i, probs[k]) for k, i in enumerate(items) if i.row.label == "pneumonia" and i.row.subtype
    ]
    if subtype_rows:
        y_viral = np.array([1 if i.row.subtype == "viral" else 0 for i, _ in subtype_rows])
        p_viral = np.array([pr[2] / max(pr[1] + pr[2], 1e-12) for _, pr in subtype_rows])
        report["subtype"] = {
            "n": len(subtype_rows),
            "auroc": auroc(y_viral, p_viral),
            "accuracy": float(((p_viral > 0.5).astype(int) == y_viral).mean()),
            "positive_class": "viral",
        }
    return report


SHIFT_HOLDOUT = "shift-holdout"  # the split name: the package's own second hold-out (docs/training.md)


def shift_holdout_rows(predictor: Predictor, manifest: Manifest) -> list[ManifestRow]:
    """The latest-patients hold-out of the data the package was trained on, recomputed from its training
    config: no model of that config trained on it, and nothing after training was fitted on it."""
    training = predictor.package.manifest.training
    config = training.get("config") or {}
    fraction = float(config.get("shift_holdout") or 0.0)
    model = predictor.model_ref.model_id
    if not fraction:
        raise DataError(
            f"{model} was trained without a shift hold-out (shift_holdout: 0)", code="no_shift_holdout"
        )
    if training.get("dataset_version") != manifest.version_id:
        raise DataError(
            f"{model} was trained on dataset version {training.get('dataset_version')}; this data is "
            f"{manifest.version_id}, so its shift hold-out cannot be recomputed from it",
            code="dataset_mismatch",
        )
    # A config with a shift hold-out was recorded whole (TrainConfig, all fields), so no default is
    # guessed here: a guess that differed from TrainConfig's would recompute another hold-out.
    sides = training_holdouts(
        manifest.rows,
        str(config["val_strategy"]),
        float(config["val_fraction"]),
        int(config["seed"]),
        fraction,
    )
    return sides.shift


def evaluate(
    predictor: Predictor,
    data: Path,
    split: str | None = "test",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Any], list[ScoredImage]]:
    manifest = scan(data, verify=False)
    split_note = None
    if split not in (None, "all", SHIFT_HOLDOUT) and not any(r.split for r in manifest.rows):
        # A CSV of path,label (a site's own data) has no split column: every row is evaluated.
        split_note = f"the data has no split column, so every row was evaluated (not only {split!r})"
        split = "all"
    if split == SHIFT_HOLDOUT:
        rows = shift_holdout_rows(predictor, manifest)
    else:
        rows = manifest.rows if split in (None, "all") else manifest.select(split)
    if not rows:
        raise DataError(f"no images in split {split!r} of {data}", code="data_empty")
    total = len(rows)
    items = score_rows(
        predictor, manifest, rows, progress=(lambda i: progress(i, total)) if progress else None
    )
    accepted = [i for i in items if i.probs is not None and i.refusal is None]
    refusals: dict[str, int] = {}
    for item in items:
        if item.refusal:
            refusals[item.refusal] = refusals.get(item.refusal, 0) + 1
    report = {
        "model": predictor.model_ref.model_id,
        "model_sha256": predictor.model_ref.sha256,
        "model_digest": predictor.model_ref.digest,
        "data": str(data),
        "dataset_version": manifest.version_id,
        "split": split,
        "evaluated": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "images": total,
        "unreadable": sum(1 for i in items if i.error),
        "refused_by_gate": refusals,
        "refusal_rate": sum(refusals.values()) / total,
        **answer_rates(predictor, items),
        **metrics_for(predictor, items),
    }
    if split_note:
        report["split_note"] = split_note
    if split == SHIFT_HOLDOUT:
        report["note"] = (
            "the shift hold-out: the latest patients of every class and id series of the training data, held out"
            " from training and from every fit"
        )
    if accepted and len(accepted) < len([i for i in items if i.probs is not None]):
        report["accepted_only"] = {
            k: v for k, v in metrics_for(predictor, accepted).items() if k in ("pneumonia", "subtype")
        }
    return report, items


def write_outputs(report: dict[str, Any], items: list[ScoredImage], out_dir: Path) -> None:
    """report.json, report.md, predictions.csv and ROC / reliability / confusion plots."""
    from .report import markdown_report, plot_confusion, plot_reliability, plot_roc

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown_report(report))
    with (out_dir / "predictions.csv").open("w") as handle:
        handle.write("path,label,subtype,p_normal,p_bacterial,p_viral,ood,refusal,error\n")
        for i in items:
            probs = ",".join(f"{v:.6f}" for v in i.probs) if i.probs is not None else ",,"
            handle.write(
                f"{i.row.path},{i.row.label},{i.row.subtype or ''},{probs},{i.ood:.3f},{i.refusal or ''},{i.error or ''}\n"
            )
    scored = [i for i in items if i.probs is not None]
    y = np.array([1 if i.row.label == "pneumonia" else 0 for i in scored])
    p = np.array([1.0 - i.probs[0] for i in scored if i.probs is not None])
    plot_roc(y, p, report, out_dir / "roc.png")
    plot_reliability(report["reliability"], out_dir / "reliability.png")
    plot_confusion(report["pneumonia"]["confusion"], out_dir / "confusion.png")


def evaluation_key(report: dict[str, Any]) -> str:
    """Evaluations are kept per dataset version and split: ``<dataset_version>/<split>``."""
    return f"{report['dataset_version']}/{report.get('split') or 'all'}"


def record_shift_holdout(package_dir: Path, data: Path) -> dict[str, Any]:
    """Evaluate a freshly written package on its shift hold-out and record it (training and
    `cxr ensemble` do this once, for a config with ``shift_holdout``): the report."""
    predictor = Predictor.from_package(package_dir)
    report, _ = evaluate(predictor, data, SHIFT_HOLDOUT)
    record_in_package(
        package_dir, report, f"cxr evaluate --model {package_dir} --data {data} --split {SHIFT_HOLDOUT}"
    )
    return report


def record_in_package(package_dir: Path, report: dict[str, Any], command: str) -> None:
    """Write an evaluation into model.json (beside the others, keyed by dataset version and split)
    and re-render the model card from it. Evaluations are not decision content: the package digest
    stays the same, and model.json's own sha256 is nowhere, so the package stays verifiable.
    """
    from dataclasses import replace

    from ..package import CARD_NAME, ModelPackage, write_manifest
    from .card import render_card

    package = ModelPackage.open(package_dir)
    made_with = report.get("model_digest") or report["model_sha256"]
    if made_with not in (package.manifest.digest, package.manifest.onnx_sha256) or (
        report.get("model_digest") and report["model_digest"] != package.manifest.digest
    ):
        raise DataError("this report was made with another model", code="model_mismatch")
    summary = {k: v for k, v in report.items() if k != "reliability"}
    summary["command"] = command
    evaluations = dict(package.manifest.evaluations)
    evaluations[evaluation_key(report)] = summary
    manifest = replace(package.manifest, evaluations=evaluations)
    write_manifest(package_dir, manifest)
    (package_dir / CARD_NAME).write_text(render_card(manifest))
