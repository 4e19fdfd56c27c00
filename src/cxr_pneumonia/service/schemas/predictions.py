"""Predictions as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .common import ErrorBody


class FindingOut(BaseModel):
    code: str
    detail: str
    severity: str


class ModelRefOut(BaseModel):
    name: str
    version: str
    sha256: str
    preprocess_version: str
    model_id: str
    digest: str | None = Field(
        default=None, description="the model package digest (weights and decision rule)"
    )
    registry_version: str | None = None  # the registry version it was served as; None: a path
    arm: str | None = None  # which model answered: champion or challenger (A/B)


class TimingsOut(BaseModel):
    decode_ms: float
    preprocess_ms: float
    inference_ms: float
    heatmap_ms: float
    total_ms: float


class ReviewOut(BaseModel):
    id: int
    prediction_id: str
    reviewer: str
    label: Literal["normal", "pneumonia"]
    subtype: Literal["bacterial", "viral"] | None
    created_at: datetime
    agrees: bool  # the review's label equals the prediction's


class PredictionOut(BaseModel):
    id: str
    created_at: datetime
    source: str
    caller: str
    label: Literal["normal", "pneumonia"]
    headline: str = Field(
        description="what to show first: the warning for an input outside the training population, else label and p"
    )
    outside_population: bool = Field(
        description="the input is atypical or outside the package's intended population: referred"
    )
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
    findings: list[FindingOut]
    model: ModelRefOut
    input_sha256: str
    input_meta: dict[str, Any]
    extra: dict[str, Any]
    timings_ms: TimingsOut
    cached: bool
    disclaimer: str
    heatmap_url: str
    heatmap_grey_url: str = Field(description="the heatmap as an 8-bit grey PNG, on the package's scale")
    heatmap_peak: float | None = Field(default=None, description="the raw Grad-CAM peak of this image")
    heatmap_reference: float | None = Field(
        default=None,
        description="the raw value shown as full heat (package-wide); None: scaled by its own peak",
    )
    image_url: str | None = Field(description="the radiograph, when images are kept (CXR_STORE_IMAGES)")
    overlay_url: str | None = Field(description="the heatmap over the radiograph, when images are kept")
    thumbnail_url: str | None = Field(default=None, description="a 128 px radiograph, when images are kept")
    reference: str | None = Field(
        default=None, description="the caller's reference given at POST /predict (stored encrypted)"
    )
    reviews: list[ReviewOut]
    preview: str | None = Field(
        default=None,
        description="POST /predict?preview=true: the radiograph as a PNG data URL, at most 512 px",
    )


class PredictionPage(BaseModel):
    items: list[PredictionOut]
    total: int
    limit: int
    offset: int


class BatchItem(BaseModel):
    index: int
    filename: str | None
    ok: bool
    prediction: PredictionOut | None = None
    error: ErrorBody | None = None


class BatchOut(BaseModel):
    results: list[BatchItem]
    accepted: int
    refused: int


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Literal["normal", "pneumonia"]
    subtype: Literal["bacterial", "viral"] | None = None

    @model_validator(mode="after")
    def _subtype_needs_pneumonia(self) -> ReviewIn:
        if self.subtype is not None and self.label != "pneumonia":
            raise ValueError("a subtype is given only for pneumonia")
        return self
