"""Write a model package (model.onnx, ood.npz, model.json, MODEL_CARD.md) from a trained model."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..data.labels import CLASSES
from ..imaging.preprocess import PreprocessSpec
from ..models.export import export_onnx, parity_check
from ..models.network import BackboneInfo, CXRNet
from ..monitoring.packaging import attach_while_making
from ..package import (
    CARD_NAME,
    ONNX_NAME,
    OOD_NAME,
    POPULATION_GATE_NAME,
    Calibration,
    ModelPackage,
    PackageManifest,
    Population,
    sha256_file,
    write_manifest,
)
from .card import render_card
from .config import TrainConfig
from .ood import (
    ServedOutputs,
    fit_ood_reference,
    fit_population_gate,
    heatmap_reference,
    ood_threshold,
    refuse_threshold,
    served_outputs,
)

log = logging.getLogger(__name__)

CLASS_MEANING = {
    "normal": "no radiographic sign of pneumonia",
    "bacterial": "pneumonia, bacterial pattern",
    "viral": "pneumonia, viral pattern",
}


@dataclass
class PackageInputs:
    model: CXRNet | None  # None: model.onnx is already in the package folder (an ensemble's composed graph)
    cfg: TrainConfig
    spec: PreprocessSpec
    backbone: BackboneInfo
    fitted: dict[str, Any]
    dataset_version: str
    history: list[dict[str, float]]
    best_epoch: int
    split_counts: dict[str, Any]
    parity_images: np.ndarray
    data_source: str
    ood_train: list[Path]  # images whose served features define "in distribution"
    ood_val: list[Path]  # images whose distances set the thresholds
    val_labels: list[str] = field(default_factory=list)  # of ood_val: picks the heatmap-scale cases
    val_patients: list[str] = field(default_factory=list)  # of ood_val: the monitor's acquisition halves
    dataset_dvc: dict[str, Any] | None = None  # data.dvc.DvcVersion of the data, None when untracked
    ood_blocks: tuple[int, ...] = ()  # an ensemble's member channel counts: one OOD covariance each
    training_extra: dict[str, Any] = field(default_factory=dict)  # more for model.json's "training"
    val_outputs: ServedOutputs | None = None  # of ood_val on the served graph, when already computed


def write_package(inputs: PackageInputs, package_dir: Path) -> PackageManifest:
    """Export the trained model to ONNX, check it against PyTorch, then fit and write the rest."""
    if inputs.model is None:
        raise ValueError("write_package exports a model; use finish_package for a graph already written")
    package_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = package_dir / ONNX_NAME
    export_onnx(inputs.model, onnx_path, inputs.spec.size, inputs.spec.channels)
    parity = parity_check(inputs.model, onnx_path, inputs.parity_images)
    return finish_package(inputs, package_dir, parity)


def finish_package(inputs: PackageInputs, package_dir: Path, parity: float) -> PackageManifest:
    """Everything fitted on the served graph (package_dir/model.onnx): the OOD reference, the
    population gate, the heatmap scale, the monitoring reference; then model.json and the card."""
    onnx_path = package_dir / ONNX_NAME
    channels = inputs.backbone.channels
    train_out = served_outputs(onnx_path, inputs.ood_train, inputs.spec, channels)
    val_out = inputs.val_outputs
    if val_out is None:
        val_out = served_outputs(onnx_path, inputs.ood_val, inputs.spec, channels)
    reference = fit_ood_reference(train_out.pooled, inputs.ood_blocks)
    atypical_above = ood_threshold(reference, val_out.pooled, inputs.cfg.ood_percentile)
    reference.save(package_dir / OOD_NAME)
    files = {ONNX_NAME: sha256_file(onnx_path), OOD_NAME: sha256_file(package_dir / OOD_NAME)}
    gate_info, outliers_pooled = _write_population_gate(inputs, onnx_path, train_out.pooled, package_dir)
    refuse_above = refuse_threshold(
        reference,
        atypical_above,
        outliers_pooled,
        factor=inputs.cfg.ood_refuse_factor,
        outlier_percentile=inputs.cfg.ood_refuse_outlier_percentile,
    )
    if gate_info:
        files[POPULATION_GATE_NAME] = sha256_file(package_dir / POPULATION_GATE_NAME)
    heat_scale = None
    if inputs.cfg.heatmap_percentile > 0:
        pneumonia = np.array([label == "pneumonia" for label in inputs.val_labels], dtype=bool)
        heat_scale = heatmap_reference(val_out.cam_peaks[pneumonia], inputs.cfg.heatmap_percentile)
    log.info("OOD reference: atypical above %.2f, refused above %.2f", atypical_above, refuse_above)
    fitted = inputs.fitted
    manifest = PackageManifest(
        name=inputs.cfg.name,
        version=inputs.cfg.version,
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        classes=CLASSES,
        class_meaning=CLASS_MEANING,
        preprocess=inputs.spec,
        calibration=Calibration(
            temperature=fitted["temperature"],
            threshold=fitted["threshold"],
            operating_point=fitted["operating_point"],
            conformal_quantile=fitted["conformal_quantile"],
            conformal_quantiles=fitted.get("conformal_quantiles"),
            heatmap_reference=heat_scale,
            conformal_alpha=inputs.cfg.conformal_alpha,
            ood_threshold=atypical_above,
            ood_percentile=inputs.cfg.ood_percentile,
            ood_refuse_threshold=refuse_above,
        ),
        backbone=inputs.backbone.name,
        feature_channels=inputs.backbone.channels,
        files=files,
        training={
            "config": inputs.cfg.to_dict(),
            "data_source": inputs.data_source,
            "dataset_version": inputs.dataset_version,
            # Next to the manifest hash: the DVC md5 and git revision the data came from.
            **({"dataset_dvc": inputs.dataset_dvc} if inputs.dataset_dvc else {}),
            "split_counts": inputs.split_counts,
            "backbone_weights": inputs.backbone.weights_source,
            "best_epoch": inputs.best_epoch,
            "history": inputs.history,
            "onnx_parity_max_abs_diff": parity,
            **({"population_gate": gate_info} if gate_info else {}),
            **(
                {
                    "heatmap_reference": f"p{inputs.cfg.heatmap_percentile:g} of raw map peaks on validation pneumonia"
                }
                if heat_scale is not None
                else {}
            ),
            **inputs.training_extra,
        },
        population=Population.from_dict(inputs.cfg.population),
        metrics={"validation": fitted["metrics"]},
        code_version=__version__,
    )
    write_manifest(package_dir, manifest)
    if attach_while_making(
        package_dir, inputs.ood_val, inputs.val_patients
    ):  # the production monitor's reference
        manifest = ModelPackage.open(package_dir).manifest
    else:
        log.warning("too few validation images for a monitoring reference; the package has none")
    (package_dir / CARD_NAME).write_text(render_card(manifest))
    log.info("model package %s written to %s", manifest.model_id, package_dir)
    return manifest


def _write_population_gate(
    inputs: PackageInputs, onnx_path: Path, train_pooled: np.ndarray, package_dir: Path
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Fit the population gate on the training features against the fitted half of the outliers;
    returns what model.json records of it (empty: no gate configured) and the outliers' features."""
    from ..data.external import external_halves

    cfg = dict(inputs.cfg.population_gate)
    if not cfg.get("outliers"):
        return {}, None
    fit_fraction, seed = float(cfg.get("fit_fraction", 0.5)), int(cfg.get("seed", 0))
    fit, untouched = external_halves(Path(cfg["outliers"]), fit_fraction, seed)
    outside = served_outputs(onnx_path, [i.path for i in fit], inputs.spec, inputs.backbone.channels).pooled
    gate = fit_population_gate(
        train_pooled, outside, c=float(cfg.get("c", 0.01)), threshold=float(cfg.get("threshold", 0.5))
    )
    gate.save(package_dir / POPULATION_GATE_NAME)
    inside_flagged = float((gate.probability(train_pooled) > gate.threshold).mean())
    log.info(
        "population gate: %d outliers fitted, %.2f%% of training images flagged",
        len(fit),
        100 * inside_flagged,
    )
    info = {
        "outliers": str(cfg["outliers"]),
        "fit_fraction": fit_fraction,
        "seed": seed,
        "c": float(cfg.get("c", 0.01)),
        "threshold": gate.threshold,
        "fit_images": len(fit),
        "untouched_images": len(untouched),
        "training_images_flagged": inside_flagged,
    }
    return info, outside
