"""The monitoring reference: what the model's own population looks like through the monitor's eyes.

Made from the validation images of a package's training data (never test): they were not trained on,
so their features and outputs look like those of new in-population images. Stored in the package as
``monitoring.npz`` (arrays) and ``monitoring.json`` (counts, rates, provenance), both listed in
model.json ``files``, so they are verified on open and part of the package digest.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.splits import acquisition_halves
from ..errors import CXRError, ModelError
from ..imaging import Source
from ..inference import Predictor
from ..inference.prediction import Prediction
from ..package import ModelPackage
from .sample import INPUT_CATEGORICAL, INPUT_NUMERIC, Sample, accepted_sample, refused_sample

REFERENCE_NAME = "monitoring.npz"
SUMMARY_NAME = "monitoring.json"
REFERENCE_FORMAT = 2  # 2 added the acquisition halves ("blocks"); 1 still reads (random-halves null)
READABLE_FORMATS = (1, 2)
DEFAULT_DIMS = 12


@dataclass
class Projection:
    """PCA of pooled features, whitened (each component divided by its standard deviation)."""

    mean: np.ndarray  # (C,)
    components: np.ndarray  # (k, C)
    scale: np.ndarray  # (k,)

    def __call__(self, pooled: np.ndarray) -> np.ndarray:
        centred = np.asarray(pooled, dtype=np.float64) - self.mean
        return (centred @ self.components.T) / self.scale

    @classmethod
    def fit(cls, pooled: np.ndarray, dims: int) -> Projection:
        mean = pooled.mean(axis=0)
        _, singular, vt = np.linalg.svd(pooled - mean, full_matrices=False)
        k = max(1, min(dims, vt.shape[0]))
        scale = singular[:k] / np.sqrt(max(1, pooled.shape[0] - 1))
        return cls(mean=mean, components=vt[:k], scale=np.maximum(scale, 1e-9))


@dataclass
class Reference:
    projection: Projection
    numeric: dict[str, np.ndarray]  # statistic -> values of the reference images that have it
    categorical: dict[str, dict[str, int]]  # statistic -> value -> count
    features: np.ndarray  # (n, k) projected features
    ood: np.ndarray
    p: np.ndarray
    pneumonia: np.ndarray  # (n,) bool: the predicted label was pneumonia
    rates: dict[str, float]  # pneumonia (label), refer, refusal
    subtypes: dict[str, int]
    info: dict[str, Any] = field(default_factory=dict)  # provenance: data, rows, package digest
    # (n,) 0/1 per accepted image: the earlier or later half of its series' patients
    # (data.splits.acquisition_halves); None when the images came without patient ids.
    blocks: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.features.shape[0])

    def sample(self, prediction: Prediction, source: str) -> Sample:
        """The monitor's row for an accepted prediction (features projected when the Predictor gave them)."""
        pooled = prediction.pooled_features
        projected = self.projection(pooled[None, :])[0] if pooled is not None else None
        return accepted_sample(prediction, source, projected)

    # ---- files --------------------------------------------------------------------------------
    def save(self, directory: Path) -> tuple[Path, Path]:
        arrays: dict[str, np.ndarray] = {
            "pca_mean": self.projection.mean.astype(np.float32),
            "pca_components": self.projection.components.astype(np.float32),
            "pca_scale": self.projection.scale.astype(np.float32),
            "features": self.features.astype(np.float32),
            "ood": self.ood.astype(np.float32),
            "p": self.p.astype(np.float32),
            "pneumonia": self.pneumonia.astype(np.uint8),
        }
        arrays.update({f"numeric_{k}": v.astype(np.float32) for k, v in self.numeric.items()})
        if self.blocks is not None:
            arrays["blocks"] = self.blocks.astype(np.uint8)
        npz = directory / REFERENCE_NAME
        with npz.open("wb") as handle:  # np.savez on a path would append ".npz" to an unusual name
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]
        summary = {
            "format": REFERENCE_FORMAT,
            "images": self.size,
            "dims": int(self.features.shape[1]),
            "categorical": self.categorical,
            "rates": self.rates,
            "subtypes": self.subtypes,
            "numeric_summary": {
                k: {"n": int(v.size), "median": float(np.median(v)) if v.size else None}
                for k, v in self.numeric.items()
            },
            "info": self.info,
        }
        json_path = directory / SUMMARY_NAME
        json_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        return npz, json_path

    @classmethod
    def load(cls, directory: Path) -> Reference:
        try:
            summary = json.loads((directory / SUMMARY_NAME).read_text())
            if summary.get("format") not in READABLE_FORMATS:
                raise ModelError(f"monitoring reference format {summary.get('format')} is not supported")
            with np.load(directory / REFERENCE_NAME, allow_pickle=False) as data:
                arrays = {k: data[k].astype(np.float64) for k in data.files}
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"the monitoring reference in {directory} cannot be read: {exc}") from exc
        return cls(
            projection=Projection(arrays["pca_mean"], arrays["pca_components"], arrays["pca_scale"]),
            numeric={k[len("numeric_") :]: v for k, v in arrays.items() if k.startswith("numeric_")},
            categorical={
                k: {str(a): int(b) for a, b in v.items()} for k, v in summary["categorical"].items()
            },
            features=arrays["features"],
            ood=arrays["ood"],
            p=arrays["p"],
            pneumonia=arrays["pneumonia"] > 0.5,
            rates={k: float(v) for k, v in summary["rates"].items()},
            subtypes={k: int(v) for k, v in summary["subtypes"].items()},
            info=dict(summary.get("info", {})),
            blocks=arrays["blocks"].astype(np.int8) if "blocks" in arrays else None,
        )

    @classmethod
    def in_package(cls, package: ModelPackage) -> Reference | None:
        """The package's own reference (verified with the package), or None when it has none."""
        if REFERENCE_NAME not in package.manifest.files or SUMMARY_NAME not in package.manifest.files:
            return None
        return cls.load(package.path)


def build_reference(
    predictor: Predictor,
    sources: Sequence[Source],
    *,
    dims: int = DEFAULT_DIMS,
    info: dict[str, Any] | None = None,
    patient_ids: Sequence[str] | None = None,
) -> Reference:
    """Run the images through the predictor (no heatmaps) and summarise what the monitor compares.
    With ``patient_ids`` (one per source) the reference keeps each image's acquisition half, which
    the feature tests draw their null across; the ids themselves are not kept."""
    predictions: list[Prediction] = []
    refusals: list[Sample] = []
    if patient_ids is not None and len(patient_ids) != len(sources):
        raise ValueError("one patient id per source, or none")
    halves = acquisition_halves(patient_ids) if patient_ids is not None else None
    kept_halves: list[int] = []
    for index, result in enumerate(predictor.iter_predict(sources, heatmap=False)):
        if isinstance(result, CXRError):
            refusals.append(refused_sample(result.code, "reference"))
        else:
            predictions.append(result)
            if halves is not None:
                kept_halves.append(halves[index])
    if len(predictions) < 20:
        raise ModelError(f"a monitoring reference needs at least 20 readable images, got {len(predictions)}")
    pooled = np.stack([p.pooled_features for p in predictions if p.pooled_features is not None])
    projection = Projection.fit(pooled, dims)
    samples = [accepted_sample(p, "reference", projection(p.pooled_features[None, :])[0])  # type: ignore[index]
               for p in predictions]  # fmt: skip
    total = len(samples) + len(refusals)
    return Reference(
        projection=projection,
        numeric={
            k: np.array([s.numeric[k] for s in samples if k in s.numeric], dtype=np.float64)
            for k in INPUT_NUMERIC
        },
        categorical={
            k: dict(Counter(s.categorical[k] for s in samples if k in s.categorical))
            for k in INPUT_CATEGORICAL
        },
        features=np.array([s.projection for s in samples], dtype=np.float64),
        ood=np.array([s.ood for s in samples], dtype=np.float64),
        p=np.array([s.p for s in samples], dtype=np.float64),
        pneumonia=np.array([s.label == "pneumonia" for s in samples], dtype=bool),
        rates={
            "pneumonia": sum(s.label == "pneumonia" for s in samples) / len(samples),
            "refer": sum(bool(s.refer) for s in samples) / len(samples),
            "refusal": len(refusals) / total,
        },
        subtypes=dict(Counter(s.subtype for s in samples if s.subtype)),
        info={**(info or {}), "images": total, "accepted": len(samples), "refused": len(refusals)},
        blocks=np.array(kept_halves, dtype=np.int8) if halves is not None else None,
    )
