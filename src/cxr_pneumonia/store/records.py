"""Prediction records: from a Prediction to a row (with its digest), queries, and reviews."""

from __future__ import annotations

import io
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from ..inference.prediction import Prediction
from .db.base import utcnow
from .db.models import PredictionRecord, Review
from .digest import json_safe, prediction_digest

SOURCES = ("api", "web", "dicom", "cli")


def new_id() -> str:
    return uuid.uuid4().hex


def heatmap_to_png(heatmap: np.ndarray) -> bytes:
    """A [0, 1] heatmap as an 8-bit grey PNG (about 10 kB at 224x224)."""
    grey = np.clip(np.rint(np.asarray(heatmap, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    # Level 1: a smooth map compresses nearly as well, at a fraction of the default level's time.
    Image.fromarray(grey).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def heatmap_from_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def build_record(
    prediction: Prediction,
    *,
    source: str,
    caller: str,
    client: str | None,
    request_id: str | None,
    extra: dict[str, Any] | None,
    image_sha256: str | None,
) -> PredictionRecord:
    """A row ready to insert, except ``audit_seq`` (set once its audit event exists)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    model = prediction.model
    row = PredictionRecord(
        id=new_id(),
        created_at=utcnow(),
        caller=caller[:128],
        source=source,
        client=client[:64] if client else None,
        request_id=request_id[:64] if request_id else None,
        input_sha256=prediction.input_sha256,
        model_name=model.name,
        model_version=model.version,
        model_sha256=model.sha256,
        model_digest=model.digest or None,
        preprocess_version=model.preprocess_version,
        label=prediction.label,
        p_pneumonia=float(prediction.p_pneumonia),
        p_bacterial=float(prediction.p_bacterial),
        p_viral=float(prediction.p_viral),
        threshold=float(prediction.threshold),
        refer=bool(prediction.refer),
        prediction_set=list(prediction.prediction_set),
        ood_score=float(prediction.ood_score),
        ood_threshold=float(prediction.ood_threshold),
        findings=json_safe([asdict(f) for f in prediction.findings]),
        input_meta=json_safe(prediction.input_meta),
        extra=json_safe(extra or {}),
        timings=json_safe(asdict(prediction.timings)),
        cached=bool(prediction.cached),
        heatmap_png=heatmap_to_png(prediction.heatmap) if prediction.heatmap is not None else None,
        heatmap_peak=prediction.heatmap_peak,
        heatmap_reference=prediction.heatmap_reference,
        image_sha256=image_sha256,
        logits=json_safe(list(prediction.logits)) if prediction.logits is not None else None,
        reviews=[],
    )
    row.digest = prediction_digest(row)
    return row


@dataclass(frozen=True)
class PredictionFilter:
    label: str | None = None
    refer: bool | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None  # "name", "name:version" or a sha256 prefix
    reviewed: bool | None = None
    reference_hmac: str | None = None  # the keyed hash of a reference (references.py): exact match

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.label is not None:
            query = query.where(PredictionRecord.label == self.label)
        if self.refer is not None:
            query = query.where(PredictionRecord.refer == self.refer)
        if self.source is not None:
            query = query.where(PredictionRecord.source == self.source)
        if self.since is not None:
            query = query.where(PredictionRecord.created_at >= self.since)
        if self.until is not None:
            query = query.where(PredictionRecord.created_at < self.until)
        if self.model:
            name, _, version = self.model.partition(":")
            by_name = PredictionRecord.model_name == name
            if version:
                by_name = by_name & (PredictionRecord.model_version == version)
            query = query.where(
                or_(by_name, PredictionRecord.model_sha256.startswith(self.model, autoescape=True))
            )
        if self.reviewed is not None:
            has_review = select(Review.id).where(Review.prediction_id == PredictionRecord.id).exists()
            query = query.where(has_review if self.reviewed else ~has_review)
        if self.reference_hmac is not None:
            query = query.where(PredictionRecord.reference_hmac == self.reference_hmac)
        return query


def list_predictions(
    session: Session, where: PredictionFilter, *, limit: int, offset: int
) -> tuple[list[PredictionRecord], int]:
    """A page, newest first, and the total count under the filter."""
    total = session.scalar(where.apply(select(func.count()).select_from(PredictionRecord))) or 0
    query = where.apply(select(PredictionRecord))
    query = (
        query.order_by(PredictionRecord.created_at.desc(), PredictionRecord.id).limit(limit).offset(offset)
    )
    return list(session.scalars(query)), int(total)


def get_prediction(session: Session, prediction_id: str) -> PredictionRecord | None:
    return session.get(PredictionRecord, prediction_id)


def add_review(
    session: Session, row: PredictionRecord, *, reviewer: str, label: str, subtype: str | None
) -> Review:
    review = Review(
        prediction_id=row.id, reviewer=reviewer[:128], label=label, subtype=subtype, created_at=utcnow()
    )
    session.add(review)
    session.flush()
    return review
