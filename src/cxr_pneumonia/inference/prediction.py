"""The result of reading one radiograph: what every door returns and the database stores."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from .. import DISCLAIMER


@dataclass(frozen=True)
class Finding:
    """A quality observation. ``severity`` is 'info' or 'warning' (refusals raise RejectedImage)."""

    code: str
    detail: str
    severity: str = "warning"


# Findings that put an input outside what the model was made for: the Predictor refers whatever the
# conformal set says, and every door leads with this, not with the probability.
OUTSIDE_POPULATION_FINDINGS = frozenset({"atypical_input", "outside_intended_population"})
OUTSIDE_POPULATION_HEADLINE = "Outside the population this model was trained for: refer"


def is_outside_population(finding_codes: Iterable[str]) -> bool:
    return any(code in OUTSIDE_POPULATION_FINDINGS for code in finding_codes)


def headline_for(label: str, p_pneumonia: float, refer: bool, finding_codes: Iterable[str]) -> str:
    """What a door shows first. For an input outside the training population that is the warning,
    never "Pneumonia 84%": the model's numbers mean little there and come below it."""
    if is_outside_population(finding_codes):
        return OUTSIDE_POPULATION_HEADLINE
    return f"{label.capitalize()} {p_pneumonia:.0%}" + (" (refer)" if refer else "")


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    sha256: str  # of model.onnx: the weights
    preprocess_version: str
    # The package digest (package.package_digest): weights, calibration, thresholds, references. Two
    # packages with the same weights but another calibration answer differently: caches key on this.
    digest: str = ""
    # The registry version this package was served as (models:/NAME/VERSION), None for a plain path.
    registry_version: str | None = None

    @property
    def cache_key(self) -> str:
        return self.digest or self.sha256

    @property
    def model_id(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class Timings:
    decode_ms: float = 0.0
    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    heatmap_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(frozen=True)
class Prediction:
    label: str  # "normal" | "pneumonia"
    p_pneumonia: float  # calibrated
    p_bacterial: float  # calibrated; p_bacterial + p_viral == p_pneumonia
    p_viral: float
    threshold: float
    refer: bool  # the conformal prediction set holds both normal and pneumonia
    prediction_set: tuple[str, ...]
    ood_score: float
    ood_threshold: float
    model: ModelRef
    input_sha256: str
    input_meta: dict[str, Any]
    findings: tuple[Finding, ...] = ()
    heatmap: np.ndarray | None = field(default=None, compare=False, repr=False)
    # The raw Grad-CAM peak of this image, and the package's reference that the map was scaled by
    # (None: a version 1 package, the map scaled by its own peak).
    heatmap_peak: float | None = None
    heatmap_reference: float | None = None
    timings: Timings = field(default_factory=Timings)
    cached: bool = False
    disclaimer: str = DISCLAIMER
    # For the production monitor only (monitoring/), never serialized: the pooled features the head saw
    # and a few intensity statistics of the decoded pixels. None when read back from a cache or JSON.
    pooled_features: np.ndarray | None = field(default=None, compare=False, repr=False)
    intensity: dict[str, float] | None = field(default=None, compare=False, repr=False)
    # The model's raw (pre-temperature) logits (normal, bacterial, viral): what recalibration from
    # reviewed cases refits on without the image (jobs/, docs/jobs.md). Not in the API answer.
    logits: tuple[float, ...] | None = field(default=None, compare=False)

    def with_cached_flag(self) -> Prediction:
        """This prediction as served from the result cache."""
        return replace(self, cached=True)

    @property
    def outside_population(self) -> bool:
        return is_outside_population(f.code for f in self.findings)

    @property
    def headline(self) -> str:
        return headline_for(self.label, self.p_pneumonia, self.refer, (f.code for f in self.findings))

    @property
    def subtype(self) -> str | None:
        """'bacterial' or 'viral' for a pneumonia label."""
        if self.label != "pneumonia":
            return None
        return "viral" if self.p_viral > self.p_bacterial else "bacterial"

    @property
    def subtype_confidence(self) -> float | None:
        """p(subtype | pneumonia)."""
        if self.label != "pneumonia" or self.p_pneumonia <= 0:
            return None
        return max(self.p_bacterial, self.p_viral) / self.p_pneumonia

    def to_dict(self, include_heatmap: bool = False, include_logits: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "label": self.label,
            "headline": self.headline,
            "outside_population": self.outside_population,
            "p_pneumonia": self.p_pneumonia,
            "p_bacterial": self.p_bacterial,
            "p_viral": self.p_viral,
            "subtype": self.subtype,
            "subtype_confidence": self.subtype_confidence,
            "threshold": self.threshold,
            "refer": self.refer,
            "prediction_set": list(self.prediction_set),
            "ood_score": self.ood_score,
            "ood_threshold": self.ood_threshold,
            "findings": [asdict(f) for f in self.findings],
            "heatmap_peak": self.heatmap_peak,
            "heatmap_reference": self.heatmap_reference,
            "model": {**asdict(self.model), "model_id": self.model.model_id},
            "input_sha256": self.input_sha256,
            "input_meta": self.input_meta,
            "timings_ms": asdict(self.timings),
            "cached": self.cached,
            "disclaimer": self.disclaimer,
        }
        if include_heatmap and self.heatmap is not None:
            data["heatmap"] = encode_heatmap(self.heatmap)
        if include_logits and self.logits is not None:
            data["logits"] = list(self.logits)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prediction:
        model = data["model"]
        return cls(
            label=data["label"],
            p_pneumonia=float(data["p_pneumonia"]),
            p_bacterial=float(data["p_bacterial"]),
            p_viral=float(data["p_viral"]),
            threshold=float(data["threshold"]),
            refer=bool(data["refer"]),
            prediction_set=tuple(data["prediction_set"]),
            ood_score=float(data["ood_score"]),
            ood_threshold=float(data["ood_threshold"]),
            model=ModelRef(
                model["name"],
                model["version"],
                model["sha256"],
                model["preprocess_version"],
                model.get("digest", ""),
                model.get("registry_version"),
            ),
            input_sha256=data["input_sha256"],
            input_meta=dict(data["input_meta"]),
            findings=tuple(Finding(**f) for f in data.get("findings", [])),
            heatmap=decode_heatmap(data["heatmap"]) if data.get("heatmap") else None,
            heatmap_peak=data.get("heatmap_peak"),
            heatmap_reference=data.get("heatmap_reference"),
            timings=Timings(**data.get("timings_ms", {})),
            cached=bool(data.get("cached", False)),
            logits=tuple(float(v) for v in data["logits"]) if data.get("logits") else None,
        )


def encode_heatmap(heatmap: np.ndarray) -> dict[str, Any]:
    """Compact, lossless-enough form: uint8 quantised, base64 (for caches and JSON)."""
    q = np.clip(np.rint(heatmap * 255.0), 0, 255).astype(np.uint8)
    return {"shape": list(q.shape), "uint8_b64": base64.b64encode(q.tobytes()).decode()}


def decode_heatmap(data: dict[str, Any]) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(data["uint8_b64"]), dtype=np.uint8)
    return (raw.reshape(data["shape"]).astype(np.float32)) / 255.0
