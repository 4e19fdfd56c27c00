"""Typed results, field for field the service's response schemas (tests/client checks every field
against the running service's /openapi.json). Fields the server adds later are ignored, not errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..inference.prediction import Finding, ModelRef, Prediction, Timings
from .errors import error_from_body

Label = Literal["normal", "pneumonia"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())


class FindingInfo(_Model):
    code: str
    detail: str
    severity: str


class ModelInfo(_Model):
    name: str
    version: str
    sha256: str
    preprocess_version: str
    model_id: str
    digest: str | None = None
    registry_version: str | None = None
    arm: str | None = None


class TimingsInfo(_Model):
    decode_ms: float
    preprocess_ms: float
    inference_ms: float
    heatmap_ms: float
    total_ms: float


class ReviewResult(_Model):
    id: int
    prediction_id: str
    reviewer: str
    label: Label
    subtype: Literal["bacterial", "viral"] | None
    created_at: datetime
    agrees: bool


class PredictionResult(_Model):
    id: str
    created_at: datetime
    source: str
    caller: str
    label: Label
    headline: str
    outside_population: bool
    p_pneumonia: float
    p_bacterial: float
    p_viral: float
    subtype: Literal["bacterial", "viral"] | None
    subtype_confidence: float | None
    threshold: float
    refer: bool
    prediction_set: list[str]
    ood_score: float
    ood_threshold: float
    findings: list[FindingInfo]
    model: ModelInfo
    input_sha256: str
    input_meta: dict[str, Any]
    extra: dict[str, Any]
    timings_ms: TimingsInfo
    cached: bool
    disclaimer: str
    heatmap_url: str
    heatmap_grey_url: str
    heatmap_peak: float | None = None
    heatmap_reference: float | None = None
    image_url: str | None = None
    overlay_url: str | None = None
    reviews: list[ReviewResult]
    preview: str | None = None

    def to_prediction(self) -> Prediction:
        """The same object a local Predictor returns (without the heatmap array), so the CLI renders
        a served result exactly as a local one."""
        return Prediction(
            label=self.label,
            p_pneumonia=self.p_pneumonia,
            p_bacterial=self.p_bacterial,
            p_viral=self.p_viral,
            threshold=self.threshold,
            refer=self.refer,
            prediction_set=tuple(self.prediction_set),
            ood_score=self.ood_score,
            ood_threshold=self.ood_threshold,
            model=ModelRef(
                self.model.name,
                self.model.version,
                self.model.sha256,
                self.model.preprocess_version,
                self.model.digest or "",
            ),
            input_sha256=self.input_sha256,
            input_meta=dict(self.input_meta),
            findings=tuple(Finding(f.code, f.detail, f.severity) for f in self.findings),
            heatmap_peak=self.heatmap_peak,
            heatmap_reference=self.heatmap_reference,
            timings=Timings(**self.timings_ms.model_dump()),
            cached=self.cached,
            disclaimer=self.disclaimer,
        )


class PredictionPage(_Model):
    items: list[PredictionResult]
    total: int
    limit: int
    offset: int


class ErrorInfo(_Model):
    error: str
    detail: str
    request_id: str | None
    reason: str | None = None


class BatchItem(_Model):
    index: int
    filename: str | None
    ok: bool
    prediction: PredictionResult | None = None
    error: ErrorInfo | None = None

    def outcome(self) -> Prediction | Exception:
        """The item as a local ``Predictor.iter_predict`` gives it: a Prediction or a project error."""
        if self.prediction is not None:
            return self.prediction.to_prediction()
        assert self.error is not None
        status = {"rejected": 422, "too_large": 413, "model_error": 503}.get(self.error.error, 400)
        return error_from_body(status, self.error.model_dump())


class BatchResult(_Model):
    results: list[BatchItem]
    accepted: int
    refused: int


class CheckInfo(_Model):
    ok: bool
    detail: str


class Health(_Model):
    status: str
    model: CheckInfo
    database: CheckInfo
