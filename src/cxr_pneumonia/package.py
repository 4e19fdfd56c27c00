"""The model package: the contract between training (which writes it) and serving (which reads it).

A directory holding ``model.onnx`` (input ``image``, outputs ``logits`` and ``features``),
``model.json`` (this module's :class:`PackageManifest`), ``ood.npz`` (the out-of-distribution
reference) and ``MODEL_CARD.md``. Every file's sha256 is recorded in model.json and checked on load:
serving never loads weights loosely and never falls back to anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .imaging.preprocess import PreprocessSpec

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)  # version 1 packages are read as version 2 with empty new sections
MANIFEST_NAME = "model.json"
ONNX_NAME = "model.onnx"
OOD_NAME = "ood.npz"
POPULATION_GATE_NAME = "population_gate.npz"  # optional (format 2)
CARD_NAME = "MODEL_CARD.md"


@dataclass(frozen=True)
class Calibration:
    temperature: float
    threshold: float  # on calibrated p_pneumonia
    operating_point: str  # how the threshold was chosen, in words
    conformal_quantile: float  # on the nonconformity score 1 - p(true binary class)
    conformal_alpha: float
    ood_threshold: float  # Mahalanobis distance above which an input is atypical: accepted, but referred
    ood_percentile: float  # the validation percentile that ood_threshold is
    ood_refuse_threshold: float  # above this an input is refused as out of distribution
    # Mondrian (class-conditional) conformal: one quantile per binary class ("normal", "pneumonia"),
    # so each class gets its own coverage; None: the single marginal quantile above is used.
    conformal_quantiles: dict[str, float] | None = None
    # The raw Grad-CAM value that shows as full heat (the 99th percentile of raw map peaks on validation
    # pneumonia cases): heatmaps are scaled by it, so brightness means the same on every image.
    # None (version 1 packages): each map is scaled by its own peak.
    heatmap_reference: float | None = None

    def quantile_for(self, binary_class: str) -> float:
        """The conformal quantile that decides whether ``binary_class`` is in the prediction set."""
        if self.conformal_quantiles and binary_class in self.conformal_quantiles:
            return self.conformal_quantiles[binary_class]
        return self.conformal_quantile


@dataclass(frozen=True)
class Population:
    """Who the model was made for. A DICOM whose attributes fall outside is flagged
    ``outside_intended_population`` and referred; a raster image has no such attributes, so the OOD
    gate stands in."""

    age_years: tuple[float, float] | None = None  # inclusive range
    modalities: tuple[str, ...] = ()  # e.g. ("CR", "DX"); empty: any
    views: tuple[str, ...] = ()  # e.g. ("AP", "PA"); empty: any
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "age_years": list(self.age_years) if self.age_years is not None else None,
            "modalities": list(self.modalities),
            "views": list(self.views),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Population:
        if not data:
            return cls()
        age = data.get("age_years")
        return cls(
            age_years=(float(age[0]), float(age[1])) if age else None,
            modalities=tuple(str(m).upper() for m in data.get("modalities", ())),
            views=tuple(str(v).upper() for v in data.get("views", ())),
            description=str(data.get("description", "")),
        )


@dataclass(frozen=True)
class PackageManifest:
    name: str
    version: str
    created: str
    classes: tuple[str, ...]
    class_meaning: dict[str, str]
    preprocess: PreprocessSpec
    calibration: Calibration
    backbone: str
    feature_channels: int
    files: dict[str, str]  # file name -> sha256
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    code_version: str = ""
    format_version: int = FORMAT_VERSION
    population: Population = field(default_factory=Population)
    # Evaluations keyed by dataset version: {version: {"dataset_version", "data_source", "split",
    # "evaluated", "metrics": {...}}}; a package can hold its test-split, site and shift evaluations.
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Lineage: {"digest", "model_id", "relation" (e.g. "recalibrated"), ...}; None for a trained package.
    parent: dict[str, Any] | None = None
    # Keys this version does not know, kept as they were when the manifest is rewritten.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def onnx_sha256(self) -> str:
        return self.files[ONNX_NAME]

    def evaluation(self, split: str = "test", dataset_version: str | None = None) -> dict[str, Any] | None:
        """The recorded evaluation on ``split`` of a dataset version (default: the training data's)."""
        version = dataset_version or self.training.get("dataset_version", "")
        return self.evaluations.get(f"{version}/{split}")

    @property
    def digest(self) -> str:
        """The package digest: what the result cache, lineage and the registry key on."""
        return package_digest(self)

    def decision_content(self) -> dict[str, Any]:
        """Everything in model.json that can change an answer (what it says or how it decides), and
        the sha256 of every file beside it that can (the card cannot)."""
        return {
            "name": self.name,
            "version": self.version,
            "classes": list(self.classes),
            "preprocess": self.preprocess.to_dict(),
            "calibration": asdict(self.calibration),
            "population": self.population.to_dict(),
            "files": {k: v for k, v in sorted(self.files.items()) if k != CARD_NAME},
        }

    @property
    def model_id(self) -> str:
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        data["classes"] = list(self.classes)
        data["preprocess"] = self.preprocess.to_dict()
        data["population"] = self.population.to_dict()
        data["format_version"] = FORMAT_VERSION
        data["digest"] = self.digest  # informative: recomputed, never trusted, on load
        return {**extra, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PackageManifest:
        try:
            version = int(data.get("format_version", 0))
            if version not in READABLE_FORMATS:
                raise ModelError(
                    f"model package format {data.get('format_version')} is not one of {READABLE_FORMATS}"
                )
            known = {f.name for f in fields(cls)} | {"digest"}
            metrics = dict(data.get("metrics", {}))
            evaluations = {str(k): dict(v) for k, v in data.get("evaluations", {}).items()}
            if version == 1 and isinstance(metrics.get("test"), dict):
                # version 1 kept one test evaluation in metrics["test"]: file it under its dataset
                test = metrics.pop("test")
                evaluations.setdefault(f"{test.get('dataset_version', '')}/{test.get('split', 'test')}", test)
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                created=str(data["created"]),
                classes=tuple(str(c) for c in data["classes"]),
                class_meaning={str(k): str(v) for k, v in data["class_meaning"].items()},
                preprocess=PreprocessSpec.from_dict(data["preprocess"]),
                calibration=Calibration(**data["calibration"]),
                backbone=str(data["backbone"]),
                feature_channels=int(data["feature_channels"]),
                files={str(k): str(v) for k, v in data["files"].items()},
                training=dict(data.get("training", {})),
                metrics=metrics,
                format_version=version,
                code_version=str(data.get("code_version", "")),
                population=Population.from_dict(data.get("population")),
                evaluations=evaluations,
                parent=dict(data["parent"]) if data.get("parent") else None,
                extra={k: v for k, v in data.items() if k not in known},
            )
        except ModelError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model.json is malformed: {exc!r}") from exc


@dataclass(frozen=True)
class OODReference:
    """Mahalanobis reference for pooled features: the training mean and shrunk precision matrix.

    An ensemble's features are its members' stacked; its precision is block-diagonal, one block per
    member (``precision`` then holds the blocks, in channel order): the distance is the root of the
    summed squared member distances, and the file stays the size of the members' files together.
    """

    mean: np.ndarray  # (C,)
    precision: np.ndarray | tuple[np.ndarray, ...]  # (C, C), or diagonal blocks that tile C

    @property
    def blocks(self) -> tuple[np.ndarray, ...]:
        return self.precision if isinstance(self.precision, tuple) else (self.precision,)

    def distance(self, pooled: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``pooled`` (N, C)."""
        pooled = np.asarray(pooled, dtype=np.float64)
        if pooled.shape[-1] != len(self.mean):
            raise ModelError(
                f"the OOD reference covers {len(self.mean)} features, the model gives {pooled.shape[-1]}"
            )
        centred = pooled - self.mean
        squared = np.zeros(len(centred))
        start = 0
        for block in self.blocks:
            part = centred[:, start : start + len(block)]
            squared += ((part @ block) * part).sum(axis=1)  # BLAS, not a 3-operand einsum loop
            start += len(block)
        return np.sqrt(np.maximum(squared, 0.0))

    def save(self, path: Path) -> None:
        if isinstance(self.precision, tuple):
            blocks: dict[str, Any] = {
                f"precision_{i}": b.astype(np.float32) for i, b in enumerate(self.precision)
            }
            np.savez_compressed(path, mean=self.mean.astype(np.float32), **blocks)
        else:
            np.savez_compressed(
                path, mean=self.mean.astype(np.float32), precision=self.precision.astype(np.float32)
            )

    @classmethod
    def load(cls, path: Path) -> OODReference:
        with np.load(path, allow_pickle=False) as data:
            mean = data["mean"].astype(np.float64)
            if "precision" in data:
                return cls(mean=mean, precision=data["precision"].astype(np.float64))
            count = sum(1 for key in data.files if key.startswith("precision_"))
            return cls(
                mean=mean, precision=tuple(data[f"precision_{i}"].astype(np.float64) for i in range(count))
            )


def package_digest(manifest: PackageManifest) -> str:
    """sha256 over the canonical JSON of :meth:`PackageManifest.decision_content`. The files are in it
    by their own sha256 (checked on open), so one hash covers every byte that can change an answer."""
    canonical = json.dumps(manifest.decision_content(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class PopulationGate:
    """A linear in/out-of-population classifier over pooled features (standardised, then logistic):
    p(other population). Trained on the package's training images against radiographs of another
    population (docs/model-package.md says which, and how they were split); above ``threshold`` an
    input is flagged atypical and referred."""

    mean: np.ndarray  # (C,)
    scale: np.ndarray  # (C,)
    coef: np.ndarray  # (C,)
    intercept: float
    threshold: float

    def probability(self, pooled: np.ndarray) -> np.ndarray:
        z = ((np.asarray(pooled, dtype=np.float64) - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            mean=self.mean.astype(np.float32),
            scale=self.scale.astype(np.float32),
            coef=self.coef.astype(np.float32),
            intercept=np.float64(self.intercept),
            threshold=np.float64(self.threshold),
        )

    @classmethod
    def load(cls, path: Path) -> PopulationGate:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                mean=data["mean"].astype(np.float64),
                scale=data["scale"].astype(np.float64),
                coef=data["coef"].astype(np.float64),
                intercept=float(data["intercept"]),
                threshold=float(data["threshold"]),
            )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelPackage:
    """A verified model package on disk."""

    path: Path
    manifest: PackageManifest
    ood: OODReference
    population_gate: PopulationGate | None = None

    @property
    def onnx_path(self) -> Path:
        return self.path / ONNX_NAME

    @property
    def card_path(self) -> Path:
        return self.path / CARD_NAME

    def card_text(self) -> str:
        return self.card_path.read_text() if self.card_path.exists() else ""

    @classmethod
    def open(cls, path: str | Path) -> ModelPackage:
        """Open and verify a package: every listed file present with its recorded sha256."""
        root = Path(path)
        manifest_path = root / MANIFEST_NAME
        if not manifest_path.is_file():
            raise ModelError(f"{root} is not a model package (no {MANIFEST_NAME})")
        try:
            data = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"{manifest_path} cannot be read: {exc}") from exc
        manifest = PackageManifest.from_dict(data)
        for required in (ONNX_NAME, OOD_NAME):
            if required not in manifest.files:
                raise ModelError(f"model.json lists no sha256 for {required}")
        for name, expected in manifest.files.items():
            file_path = root / name
            if not file_path.is_file():
                raise ModelError(f"model package file {name} is missing")
            actual = sha256_file(file_path)
            if actual != expected:
                raise ModelError(
                    f"model package file {name} has sha256 {actual[:12]}…, model.json says {expected[:12]}…"
                )
        gate = (
            PopulationGate.load(root / POPULATION_GATE_NAME)
            if POPULATION_GATE_NAME in manifest.files
            else None
        )
        return cls(path=root, manifest=manifest, ood=OODReference.load(root / OOD_NAME), population_gate=gate)


def write_manifest(path: Path, manifest: PackageManifest) -> None:
    (path / MANIFEST_NAME).write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=False) + "\n")
