"""Recalibrate a model package on a site's own labelled cases: same weights, a new decision rule.

The temperature, the threshold (at the package's own operating point: its minimum sensitivity) and
the conformal quantile(s) are refitted on the site's cases; the weights and the out-of-distribution
reference are kept. The result is a new package version whose model.json names its parent (by digest)
and the data it was recalibrated on. NumPy and ONNX Runtime only: it runs on a serving install.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data.catalog import scan
from ..data.labels import class_index
from ..errors import DataError
from ..inference.predictor import Predictor
from ..package import CARD_NAME, Calibration, ModelPackage, PackageManifest, write_manifest
from .calibration import DecisionRule, fit_decision_rule
from .evaluate import ScoredImage, score_rows

MIN_CASES_PER_CLASS = 20  # below this a threshold or a quantile says more about chance than the site


def operating_sensitivity(manifest: PackageManifest) -> float:
    """The minimum sensitivity the package's threshold was chosen for (its stated operating point)."""
    return float(manifest.training.get("config", {}).get("min_sensitivity", 0.95))


def _fit_cases(items: list[ScoredImage]) -> tuple[np.ndarray, np.ndarray]:
    usable = [i for i in items if i.logits is not None and i.refusal is None]
    if not usable:
        raise DataError("no image of the recalibration data could be scored", code="data_empty")
    logits = np.stack([i.logits for i in usable if i.logits is not None]).astype(np.float64)
    targets = np.array([class_index(i.row.label, i.row.subtype) for i in usable])
    check_enough(targets, "the data")
    return logits, targets


def check_enough(targets: np.ndarray, what: str) -> None:
    """At least MIN_CASES_PER_CLASS of each class in the cases a rule is fitted on."""
    for name, count in (("normal", int((targets == 0).sum())), ("pneumonia", int((targets != 0).sum()))):
        if count < MIN_CASES_PER_CLASS:
            raise DataError(
                f"recalibration needs at least {MIN_CASES_PER_CLASS} {name} cases; {what} has {count}",
                code="data_too_small",
            )


def fit_for(parent: PackageManifest, logits: np.ndarray, targets: np.ndarray) -> DecisionRule:
    """The package's own decision rule refitted: its operating point, its alpha, Mondrian or not."""
    return fit_decision_rule(
        logits,
        targets,
        operating_sensitivity(parent),
        parent.calibration.conformal_alpha,
        parent.calibration.conformal_quantiles is not None,
    )


def recalibrated_manifest(
    parent: PackageManifest, rule: DecisionRule, data_info: dict[str, Any], version: str
) -> PackageManifest:
    calibration: Calibration = replace(
        parent.calibration,
        temperature=rule.temperature,
        threshold=rule.threshold,
        operating_point=(
            f"highest specificity with sensitivity >= {operating_sensitivity(parent):.2f} "
            "on the site's recalibration cases"
        ),
        conformal_quantile=rule.conformal_quantile,
        conformal_quantiles=rule.conformal_quantiles,
    )
    fitted = {
        "sensitivity_at_threshold": rule.sensitivity,
        "specificity_at_threshold": rule.specificity,
        "ece_before": rule.ece_before,
        "ece_after": rule.ece_after,
    }
    return replace(
        parent,
        version=version,
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        calibration=calibration,
        # the parent's evaluations were made with another decision rule: they do not describe this one
        evaluations={},
        metrics={**parent.metrics, "recalibration": {**data_info, "fitted_on_site_cases": fitted}},
        parent={
            "digest": parent.digest,
            "model_id": parent.model_id,
            "relation": "recalibrated",
            "recalibrated_on": data_info,
        },
    )


def recalibrate(
    package_dir: Path, data: Path, out_dir: Path, *, split: str = "all", version: str | None = None
) -> PackageManifest:
    """Write a recalibrated copy of ``package_dir`` to ``out_dir``; returns its manifest."""
    parent = open_parent(package_dir, out_dir)
    manifest = scan(data, verify=False)
    rows = manifest.rows if split == "all" else manifest.select(split)
    if not rows:
        raise DataError(f"no images in split {split!r} of {data}", code="data_empty")
    predictor = Predictor(parent)
    logits, targets = _fit_cases(score_rows(predictor, manifest, rows))
    rule = fit_for(parent.manifest, logits, targets)
    data_info = {
        "data_source": str(data),
        "dataset_version": manifest.version_id,
        "split": split,
        "images": len(targets),
        "normal": int((targets == 0).sum()),
        "pneumonia": int((targets != 0).sum()),
    }
    new_version = version or f"{parent.manifest.version}+recal.{manifest.version_id[:8]}"
    return write_child(parent, recalibrated_manifest(parent.manifest, rule, data_info, new_version), out_dir)


def open_parent(package_dir: Path, out_dir: Path) -> ModelPackage:
    """The package to recalibrate, verified, and an output folder that holds nothing yet."""
    parent = ModelPackage.open(package_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DataError(f"{out_dir} exists and is not empty", code="out_exists")
    return parent


def write_child(parent: ModelPackage, child: PackageManifest, out_dir: Path) -> PackageManifest:
    """The parent's files, unchanged, with the child's model.json and card; verified once written."""
    from .card import render_card

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in parent.manifest.files:
        shutil.copy2(parent.path / name, out_dir / name)
    write_manifest(out_dir, child)
    (out_dir / CARD_NAME).write_text(render_card(child))
    return ModelPackage.open(out_dir).manifest  # what was written must verify
