"""Write a model package (model.onnx, ood.npz, model.json, MODEL_CARD.md) from a trained model."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
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
    Calibration,
    ModelPackage,
    PackageManifest,
    sha256_file,
    write_manifest,
)
from .card import render_card
from .config import TrainConfig
from .ood import fit_ood_reference, ood_threshold, served_pooled_features

log = logging.getLogger(__name__)

CLASS_MEANING = {
    "normal": "no radiographic sign of pneumonia",
    "bacterial": "pneumonia, bacterial pattern",
    "viral": "pneumonia, viral pattern",
}


@dataclass
class PackageInputs:
    model: CXRNet
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


def write_package(inputs: PackageInputs, package_dir: Path) -> PackageManifest:
    package_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = package_dir / ONNX_NAME
    export_onnx(inputs.model, onnx_path, inputs.spec.size, inputs.spec.channels)
    parity = parity_check(inputs.model, onnx_path, inputs.parity_images)
    reference = fit_ood_reference(served_pooled_features(onnx_path, inputs.ood_train, inputs.spec))
    atypical_above = ood_threshold(
        reference, served_pooled_features(onnx_path, inputs.ood_val, inputs.spec), inputs.cfg.ood_percentile
    )
    reference.save(package_dir / OOD_NAME)
    log.info(
        "OOD reference: atypical above %.2f, refused above %.2f",
        atypical_above,
        atypical_above * inputs.cfg.ood_refuse_factor,
    )
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
            conformal_alpha=inputs.cfg.conformal_alpha,
            ood_threshold=atypical_above,
            ood_percentile=inputs.cfg.ood_percentile,
            ood_refuse_threshold=atypical_above * inputs.cfg.ood_refuse_factor,
        ),
        backbone=inputs.backbone.name,
        feature_channels=inputs.backbone.channels,
        files={ONNX_NAME: sha256_file(onnx_path), OOD_NAME: sha256_file(package_dir / OOD_NAME)},
        training={
            "config": inputs.cfg.to_dict(),
            "data_source": inputs.data_source,
            "dataset_version": inputs.dataset_version,
            "split_counts": inputs.split_counts,
            "backbone_weights": inputs.backbone.weights_source,
            "best_epoch": inputs.best_epoch,
            "history": inputs.history,
            "onnx_parity_max_abs_diff": parity,
        },
        metrics={"validation": fitted["metrics"]},
        code_version=__version__,
    )
    write_manifest(package_dir, manifest)
    if attach_while_making(package_dir, inputs.ood_val):  # the production monitor's reference
        manifest = ModelPackage.open(package_dir).manifest
    else:
        log.warning("too few validation images for a monitoring reference; the package has none")
    (package_dir / CARD_NAME).write_text(render_card(manifest))
    log.info("model package %s written to %s", manifest.model_id, package_dir)
    return manifest
