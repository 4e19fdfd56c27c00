"""Recalibrate from the clinicians' reviewed cases in the store: no image is needed, only each
prediction's raw logits (kept with every record) and its confirmed label.

The decision rule is refitted exactly as ``cxr recalibrate --data`` does (recalibrate.fit_for). The
reviewed cases are split, seeded and stratified: the rule is fitted on one part and the parent's and
the new rule are both measured on the other (held out), so the "after" numbers are not the optimistic
ones of the cases the rule was fitted on. With ``holdout=0`` both are measured on the fitted cases,
and the evaluation says so. NumPy and SciPy only: it runs on a serving install.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.labels import class_index
from ..errors import DataError
from ..package import Calibration, ModelPackage, PackageManifest
from ..store.digest import json_safe
from ..store.facade import Store
from ..store.reviewed import ReviewedCase, reviewed_cases
from .calibration import expected_calibration_error, p_pneumonia, probabilities
from .metrics import binary_report, brier
from .recalibrate import (
    check_enough,
    fit_for,
    open_parent,
    operating_sensitivity,
    recalibrated_manifest,
    write_child,
)

Progress = Callable[[float, str], None]
MAX_HOLDOUT = 0.5


@dataclass(frozen=True)
class ReviewRecalibration:
    manifest: PackageManifest  # the new package's, as written and verified
    evaluation: dict[str, Any]  # the parent's and the new rule on the same cases, and which cases


def split_cases(targets: np.ndarray, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, held-out) indices: ``holdout`` of each class (normal, pneumonia) held out, seeded."""
    rng = np.random.default_rng(seed)
    fit: list[int] = []
    held: list[int] = []
    for members in (np.flatnonzero(targets == 0), np.flatnonzero(targets != 0)):
        shuffled = rng.permutation(members)
        cut = math.ceil(len(shuffled) * holdout)
        held.extend(int(i) for i in shuffled[:cut])
        fit.extend(int(i) for i in shuffled[cut:])
    return np.array(sorted(fit), dtype=int), np.array(sorted(held), dtype=int)


def rule_metrics(calibration: Calibration, logits: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    """What a decision rule does on labelled logits: threshold metrics, calibration, referrals."""
    y = (targets != 0).astype(int)
    p = p_pneumonia(probabilities(logits, calibration.temperature))
    report = binary_report(y, p, calibration.threshold)
    # as Predictor.decide: a class is in the set when 1 - p(class) <= its quantile; refer unless one is
    in_normal = p <= calibration.quantile_for("normal")
    in_pneumonia = (1.0 - p) <= calibration.quantile_for("pneumonia")
    return {
        "n": len(y),
        "temperature": calibration.temperature,
        "threshold": calibration.threshold,
        "sensitivity": report["sensitivity"],
        "sensitivity_ci95": report["sensitivity_ci95"],
        "specificity": report["specificity"],
        "specificity_ci95": report["specificity_ci95"],
        "auroc": report["auroc"],
        "ece": expected_calibration_error(y, p),
        "brier": brier(y, p),
        "referral_rate": float(np.mean(in_normal == in_pneumonia)),
    }


# How much worse the new rule may measure than the parent's before the evaluation warns (an
# administrator deciding on promotion should not have to spot it in a table of numbers).
ECE_SLACK = 0.01
BRIER_SLACK = 0.005
REFERRAL_SLACK = 0.10


def worse_after(before: dict[str, Any], after: dict[str, Any], min_sensitivity: float) -> list[str]:
    """Plain-words warnings where the new rule measures worse than the parent's on the same cases."""

    def both(key: str) -> tuple[float, float] | None:
        b, a = before.get(key), after.get(key)
        ok = isinstance(b, float) and isinstance(a, float) and math.isfinite(b) and math.isfinite(a)
        return (b, a) if ok else None  # type: ignore[return-value]

    warnings: list[str] = []
    if (pair := both("sensitivity")) and pair[1] < min_sensitivity <= pair[0]:
        warnings.append(
            f"sensitivity fell below the operating point ({pair[0]:.3f} -> {pair[1]:.3f}; "
            f"the package promises >= {min_sensitivity:.2f})"
        )
    if (pair := both("ece")) and pair[1] > pair[0] + ECE_SLACK:
        warnings.append(f"calibration error rose ({pair[0]:.3f} -> {pair[1]:.3f} ECE)")
    if (pair := both("brier")) and pair[1] > pair[0] + BRIER_SLACK:
        warnings.append(f"Brier score rose ({pair[0]:.3f} -> {pair[1]:.3f})")
    if (pair := both("referral_rate")) and pair[1] > pair[0] + REFERRAL_SLACK:
        warnings.append(f"referrals rose ({pair[0]:.1%} -> {pair[1]:.1%} of cases)")
    return warnings


def _reviewed_set_id(cases: list[ReviewedCase]) -> str:
    """A version id of the reviewed set: the same reviews give the same id (and package version)."""
    text = "\n".join(f"{c.prediction_id},{c.label},{c.subtype or ''}" for c in cases)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def recalibrate_from_reviews(
    package_dir: Path,
    store: Store,
    out_dir: Path,
    *,
    source: str,
    holdout: float = 0.3,
    seed: int = 0,
    version: str | None = None,
    progress: Progress | None = None,
) -> ReviewRecalibration:
    """Write a recalibrated copy of ``package_dir`` fitted on the store's reviewed cases of its weights.

    ``source`` names the site or store in model.json ("recalibrated on N reviewed cases from ...")."""
    report = progress or (lambda _fraction, _stage: None)
    if not 0.0 <= holdout <= MAX_HOLDOUT:
        raise DataError(f"holdout must be between 0 and {MAX_HOLDOUT}, not {holdout}", code="bad_holdout")
    parent = open_parent(package_dir, out_dir)
    report(0.1, "reading the reviewed cases")
    with store.reading() as session:
        cases = reviewed_cases(session, parent.manifest.onnx_sha256, parent.manifest.preprocess.version)
    if not cases:
        raise DataError(
            f"no reviewed prediction of {parent.manifest.model_id}'s weights has its logits stored",
            code="data_empty",
        )
    logits = np.array([c.logits for c in cases], dtype=np.float64)
    targets = np.array([class_index(c.label, c.subtype) for c in cases])
    fit, held = split_cases(targets, holdout, seed) if holdout > 0 else (np.arange(len(cases)), None)
    check_enough(targets[fit], f"the fitting part of the {len(cases)} reviewed cases")
    report(0.4, f"fitting the decision rule on {len(fit)} of {len(cases)} reviewed cases")
    rule = fit_for(parent.manifest, logits[fit], targets[fit])
    set_id = _reviewed_set_id(cases)
    data_info = {
        "description": f"recalibrated on {len(cases)} reviewed cases from {source}",
        "data_source": f"reviewed cases: {source}",
        "dataset_version": set_id,
        "reviewed_cases": len(cases),
        "images": len(fit),  # the cases the rule was fitted on
        "normal": int((targets[fit] == 0).sum()),
        "pneumonia": int((targets[fit] != 0).sum()),
        "held_out": len(held) if held is not None else 0,
        "seed": seed,
    }
    child = recalibrated_manifest(parent.manifest, rule, data_info, version or _version(parent, set_id))
    report(0.7, "measuring the parent's and the new decision rule")
    measured = held if held is not None else fit
    evaluation: dict[str, Any] = {
        "cases": "held_out" if held is not None else "fitted_on",
        "note": (
            f"{len(measured)} reviewed cases held out from fitting (seed {seed}, stratified)"
            if held is not None
            else "measured on the same cases the rule was fitted on: the 'after' numbers are optimistic"
        ),
        "before": rule_metrics(parent.manifest.calibration, logits[measured], targets[measured]),
        "after": rule_metrics(child.calibration, logits[measured], targets[measured]),
    }
    evaluation["warnings"] = worse_after(
        evaluation["before"], evaluation["after"], operating_sensitivity(parent.manifest)
    )
    evaluation = json_safe(evaluation)  # a class without cases gives NaN: JSON has no NaN
    child.metrics["recalibration"]["evaluation"] = evaluation
    report(0.85, "writing the package")
    return ReviewRecalibration(write_child(parent, child, out_dir), evaluation)


def _version(parent: ModelPackage, set_id: str) -> str:
    return f"{parent.manifest.version}+recal.{set_id[:8]}"
