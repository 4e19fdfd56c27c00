"""Reviewed cases for recalibration: each prediction's raw logits and its clinician's confirmed label.

Only predictions of the same weights and preprocessing count (raw logits depend on nothing else, so a
package recalibrated before still shares them); the newest review of a prediction is its label.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db.models import PredictionRecord, Review


@dataclass(frozen=True)
class ReviewedCase:
    prediction_id: str
    logits: tuple[float, ...]
    label: str  # "normal" | "pneumonia"
    subtype: str | None


def reviewed_cases(session: Session, model_sha256: str, preprocess_version: str) -> list[ReviewedCase]:
    """Every reviewed prediction of these weights that kept its logits, oldest first."""
    query = (
        select(PredictionRecord)
        .where(
            PredictionRecord.model_sha256 == model_sha256,
            PredictionRecord.preprocess_version == preprocess_version,
            PredictionRecord.logits.is_not(None),
            select(Review.id).where(Review.prediction_id == PredictionRecord.id).exists(),
        )
        .order_by(PredictionRecord.created_at, PredictionRecord.id)
    )
    cases: list[ReviewedCase] = []
    for row in session.scalars(query):
        review = row.reviews[-1]  # ordered by id: the newest confirmed label
        if not row.logits or len(row.logits) != 3:
            continue  # a JSON null, or another head than (normal, bacterial, viral)
        cases.append(ReviewedCase(row.id, tuple(float(v) for v in row.logits), review.label, review.subtype))
    return cases
