"""An ensemble package from trained member packages: one composed graph, fitted on their shared hold-out.

The members must have been trained on the same dataset version with the same validation hold-out
(recomputed here from each member's own config and compared), so nothing the ensemble is fitted on
was seen by a member in training. Their weights are not retrained: the graph is composed from their
``model.onnx`` files (models/compose.py); the temperature, threshold and conformal quantiles, the OOD
reference, the population gate, the heatmap scale and the monitoring reference are then fitted on the
composed graph exactly as a training run fits them on its own. The test split is never read.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data.catalog import scan
from ..data.labels import class_index
from ..errors import DataError
from ..imaging import load
from ..imaging.preprocess import PreprocessSpec, to_model_input
from ..inference.session import open_session
from ..models.compose import Member, compose_ensemble
from ..models.network import BackboneInfo
from ..models.quantize import CALIBRATIONS, describe, quantize_graph
from ..package import ONNX_NAME, ModelPackage, PackageManifest
from .config import TrainConfig
from .evaluate import record_shift_holdout
from .ood import served_outputs
from .package_writer import PackageInputs, finish_package
from .run import fit_on_validation, shared_split, split_counts

log = logging.getLogger(__name__)
COMBINATION = (
    "mean of the members' temperature-scaled logits (one graph: stacked feature maps, one linear head)"
)
PARITY_IMAGES = 16
PARITY_TOLERANCE = 1e-4
CALIBRATION_IMAGES = 128


def build_ensemble(
    members: Sequence[Path],
    data: Path,
    out_dir: Path,
    *,
    version: str,
    name: str | None = None,
    int8: bool = False,
    calibration_images: int = CALIBRATION_IMAGES,
    calibration_method: str = "minmax",
    int8_depthwise: bool = False,
) -> PackageManifest:
    """Write the ensemble of the ``members`` packages to ``out_dir``; returns its manifest. With
    ``int8`` the composed graph is quantized (models/quantize.py) on ``calibration_images`` training
    images before anything is fitted on it."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DataError(f"{out_dir} exists and is not empty", code="out_exists")
    if calibration_method not in CALIBRATIONS:
        raise DataError(f"--int8-calibration must be one of {', '.join(CALIBRATIONS)}", code="usage")
    packages = [ModelPackage.open(p) for p in members]
    if len(packages) < 2:
        raise DataError("an ensemble needs at least two member packages", code="usage")
    _check_same_contract(packages)
    manifest = scan(data, verify=False)
    trained_on = {p.manifest.training.get("dataset_version") for p in packages}
    if trained_on != {manifest.version_id}:
        raise DataError(
            f"the members were trained on dataset version(s) {sorted(map(str, trained_on))}, "
            f"{data} is {manifest.version_id}: their validation hold-out cannot be recomputed from it",
            code="dataset_mismatch",
        )
    configs = [TrainConfig.from_dict(p.manifest.training["config"]) for p in packages]
    train_rows, val_rows, shift_rows = shared_split(manifest, configs)
    cfg = replace(configs[0], name=name or packages[0].manifest.name, version=version)
    spec = packages[0].manifest.preprocess

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / ONNX_NAME
    train_paths = [manifest.absolute(r) for r in train_rows]
    val_paths = [manifest.absolute(r) for r in val_rows]
    parity_paths = val_paths[:PARITY_IMAGES]
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "float.onnx"
        composed = compose_ensemble(
            [Member(p.path / ONNX_NAME, p.manifest.calibration.temperature) for p in packages], float_path
        )
        parity = composition_parity(packages, float_path, parity_paths, spec)
        log.info("ensemble of %d: composed graph matches its members within %.1e", len(packages), parity)
        record = _ensemble_record(packages, parity)
        if int8:
            picked = _calibration_sample(train_paths, calibration_images, cfg.seed)
            inputs = [_model_input(p, spec)[None] for p in picked]
            quantize_graph(float_path, onnx_path, inputs, calibration_method, int8_depthwise)
            record["int8"] = {
                "method": describe(calibration_method, int8_depthwise),
                "calibration_images": len(picked),
                "calibration_source": "training split, seeded sample",
                "max_abs_logit_change": _logit_change(float_path, onnx_path, parity_paths, spec),
            }
        else:
            shutil.copyfile(float_path, onnx_path)
    channels = sum(composed.channels)
    val_out = served_outputs(onnx_path, val_paths, spec, channels)  # scored once: calibration and OOD
    val_logits = val_out.logits.astype(np.float64)
    targets = np.array([class_index(r.label, r.subtype) for r in val_rows])
    fitted = fit_on_validation(val_logits, targets, cfg)
    backbone = BackboneInfo(
        name="ensemble(" + ", ".join(p.manifest.backbone for p in packages) + ")",
        channels=channels,
        pretrained=True,
        weights_source="its members' trained weights, unchanged; training.ensemble lists them",
    )
    built = finish_package(
        PackageInputs(
            model=None,
            cfg=cfg,
            spec=spec,
            backbone=backbone,
            fitted=fitted,
            dataset_version=manifest.version_id,
            history=[],
            best_epoch=0,
            split_counts=split_counts(train_rows, val_rows, shift_rows),
            parity_images=np.empty(0),
            data_source=str(data),
            ood_train=train_paths,
            ood_val=val_paths,
            val_labels=[r.label for r in val_rows],
            val_patients=[r.patient_id for r in val_rows],
            dataset_dvc=manifest.dvc.to_dict() if manifest.dvc else None,
            ood_blocks=composed.channels,
            training_extra={"ensemble": record},
            val_outputs=val_out,
        ),
        out_dir,
        parity,
    )
    if cfg.shift_holdout:  # scored once, after everything is fitted on validation
        record_shift_holdout(out_dir, data)
        built = ModelPackage.open(out_dir).manifest
    return built


def _model_input(path: Path, spec: PreprocessSpec) -> np.ndarray:
    return to_model_input(load(path), spec)


def _calibration_sample(paths: Sequence[Path], n: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    return [paths[i] for i in sorted(rng.choice(len(paths), min(n, len(paths)), replace=False))]


def _logit_change(float_path: Path, int8_path: Path, paths: Sequence[Path], spec: PreprocessSpec) -> float:
    """Max |int8 logits - float logits| on real images: what quantization moved (informative)."""
    batch = np.stack([_model_input(p, spec) for p in paths])
    before = open_session(float_path).run(["logits"], {"image": batch})[0]
    after = open_session(int8_path).run(["logits"], {"image": batch})[0]
    return float(np.max(np.abs(after - before)))


def composition_parity(
    packages: Sequence[ModelPackage], onnx_path: Path, paths: Sequence[Path], spec: PreprocessSpec
) -> float:
    """Max |composed logits - mean of the members' scaled logits| on real images (raises above 1e-4)."""
    batch = np.stack([_model_input(p, spec) for p in paths])
    expected = np.mean(
        [
            open_session(p.path / ONNX_NAME).run(["logits"], {"image": batch})[0]
            / p.manifest.calibration.temperature
            for p in packages
        ],
        axis=0,
    )
    got = open_session(onnx_path).run(["logits"], {"image": batch})[0]
    diff = float(np.max(np.abs(got - expected)))
    if diff >= PARITY_TOLERANCE:
        raise DataError(
            f"the composed graph differs from its members by {diff:.2e}", code="composition_failed"
        )
    return diff


def _check_same_contract(packages: Sequence[ModelPackage]) -> None:
    """Members answer the same question on the same input: classes, preprocessing, population."""
    first = packages[0].manifest
    for package in packages[1:]:
        m = package.manifest
        for what, mine, theirs in (
            ("classes", m.classes, first.classes),
            ("preprocessing", m.preprocess, first.preprocess),
            ("intended population", m.population, first.population),
        ):
            if mine != theirs:
                raise DataError(f"{m.model_id} and {first.model_id} differ in {what}", code="members_differ")


def _ensemble_record(packages: Sequence[ModelPackage], parity: float) -> dict[str, Any]:
    return {
        "combination": COMBINATION,
        "composition_max_abs_diff": parity,
        "members": [
            {
                "model_id": p.manifest.model_id,
                "digest": p.manifest.digest,
                "temperature": p.manifest.calibration.temperature,
                "feature_channels": p.manifest.feature_channels,
                "seed": p.manifest.training.get("config", {}).get("seed"),
                "best_epoch": p.manifest.training.get("best_epoch"),
            }
            for p in packages
        ],
    }
