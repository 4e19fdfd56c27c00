"""Shadow answers, and the pairs the agreement reports are computed from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..inference.prediction import Prediction
from .db.base import utcnow
from .db.models import PredictionRecord, ShadowPrediction


def shadow_row(prediction_id: str, outcome: Prediction | tuple[str, dict[str, Any]]) -> ShadowPrediction:
    """A row for a shadow prediction, or for a refusal given as (error code, model description)."""
    if isinstance(outcome, Prediction):
        ref = outcome.model
        return ShadowPrediction(
            prediction_id=prediction_id,
            created_at=utcnow(),
            model_name=ref.name,
            model_version=ref.version,
            model_digest=ref.digest,
            registry_version=ref.registry_version,
            label=outcome.label,
            p_pneumonia=float(outcome.p_pneumonia),
            refer=bool(outcome.refer),
            inference_ms=float(outcome.timings.inference_ms),
        )
    code, model = outcome
    return ShadowPrediction(
        prediction_id=prediction_id,
        created_at=utcnow(),
        model_name=str(model["name"]),
        model_version=str(model["version"]),
        model_digest=str(model["digest"]),
        registry_version=model.get("registry_version"),
        error=code[:64],
    )


def served_model(row: PredictionRecord) -> dict[str, Any]:
    """What the record says about the model that answered (registry version, digest, arm)."""
    model = dict((row.extra or {}).get("model") or {})
    model.setdefault("digest", "")
    return model


@dataclass(frozen=True)
class Pair:
    """One input, answered by one model and silently by another."""

    answered: PredictionRecord
    shadow: ShadowPrediction
    truth: str | None  # the latest clinician review's label


def matches(selector: str, name: str, version: str, digest: str) -> bool:
    """A model selector: a digest (prefix of at least 8) or a model id NAME:VERSION."""
    return selector == f"{name}:{version}" or (len(selector) >= 8 and digest.startswith(selector))


def pairs(session: Session, answered_by: str, shadowed_by: str, limit: int = 100_000) -> Iterator[Pair]:
    query = (
        select(PredictionRecord, ShadowPrediction)
        .join(ShadowPrediction, ShadowPrediction.prediction_id == PredictionRecord.id)
        .where(ShadowPrediction.label.is_not(None))
        .order_by(ShadowPrediction.id.desc())
        .limit(limit)
    )
    for answered, shadow in session.execute(query):
        served = served_model(answered)
        if not matches(answered_by, answered.model_name, answered.model_version, served["digest"]):
            continue
        if not matches(shadowed_by, shadow.model_name, shadow.model_version, shadow.model_digest):
            continue
        truth = answered.reviews[-1].label if answered.reviews else None
        yield Pair(answered, shadow, truth)


def shadows_of(session: Session, prediction_id: str) -> list[ShadowPrediction]:
    query = select(ShadowPrediction).where(ShadowPrediction.prediction_id == prediction_id)
    return list(session.scalars(query.order_by(ShadowPrediction.id)))
