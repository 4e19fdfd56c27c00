"""Rows to API models: the one place that decides how a record looks from outside."""

from __future__ import annotations

from .. import DISCLAIMER
from ..inference.prediction import headline_for, is_outside_population
from ..store.db.models import ApiKey, AuditEvent, Job, PredictionRecord, Review, User
from ..store.shadow import served_model
from .deps import API_PREFIX
from .schemas.accounts import KeyOut, UserOut
from .schemas.audit import AuditEventOut
from .schemas.jobs import JobOut
from .schemas.predictions import FindingOut, ModelRefOut, PredictionOut, ReviewOut, TimingsOut


def _subtype(row: PredictionRecord) -> tuple[str | None, float | None]:
    if row.label != "pneumonia" or row.p_pneumonia <= 0:
        return None, None
    subtype = "viral" if row.p_viral > row.p_bacterial else "bacterial"
    return subtype, max(row.p_bacterial, row.p_viral) / row.p_pneumonia


def review_out(review: Review, predicted_label: str) -> ReviewOut:
    return ReviewOut(
        id=review.id,
        prediction_id=review.prediction_id,
        reviewer=review.reviewer,
        label=review.label,  # type: ignore[arg-type]
        subtype=review.subtype,  # type: ignore[arg-type]
        created_at=review.created_at,
        agrees=review.label == predicted_label,
    )


def prediction_out(
    row: PredictionRecord, preview: str | None = None, reference: str | None = None
) -> PredictionOut:
    base = f"{API_PREFIX}/predictions/{row.id}"
    subtype, subtype_confidence = _subtype(row)
    codes = [str(f.get("code", "")) for f in row.findings]
    served = served_model(row)
    return PredictionOut(
        id=row.id,
        created_at=row.created_at,
        source=row.source,
        caller=row.caller,
        label=row.label,  # type: ignore[arg-type]
        headline=headline_for(row.label, row.p_pneumonia, row.refer, codes),
        outside_population=is_outside_population(codes),
        p_pneumonia=row.p_pneumonia,
        p_bacterial=row.p_bacterial,
        p_viral=row.p_viral,
        subtype=subtype,  # type: ignore[arg-type]
        subtype_confidence=subtype_confidence,
        threshold=row.threshold,
        refer=row.refer,
        prediction_set=list(row.prediction_set),
        ood_score=row.ood_score,
        ood_threshold=row.ood_threshold,
        findings=[FindingOut(**f) for f in row.findings],
        model=ModelRefOut(
            name=row.model_name,
            version=row.model_version,
            sha256=row.model_sha256,
            preprocess_version=row.preprocess_version,
            model_id=row.model_id,
            digest=row.model_digest or served.get("digest") or None,
            registry_version=served.get("registry_version"),
            arm=served.get("arm"),
        ),
        input_sha256=row.input_sha256,
        input_meta=dict(row.input_meta),
        extra=dict(row.extra),
        timings_ms=TimingsOut(**row.timings),
        cached=row.cached,
        disclaimer=DISCLAIMER,
        heatmap_url=f"{base}/heatmap.png",
        heatmap_grey_url=f"{base}/heatmap-grey.png",
        heatmap_peak=row.heatmap_peak,
        heatmap_reference=row.heatmap_reference,
        image_url=f"{base}/image.png" if row.image_sha256 else None,
        overlay_url=f"{base}/overlay.png" if row.image_sha256 else None,
        thumbnail_url=f"{base}/image.png?size=thumbnail" if row.image_sha256 else None,
        reference=reference,
        reviews=[review_out(r, row.label) for r in row.reviews],
        preview=preview,
    )


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        role=user.role,  # type: ignore[arg-type]
        active=user.active,
        created_at=user.created_at,
        created_by=user.created_by,
        disabled_at=user.disabled_at,
    )


def key_out(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        role=key.role,  # type: ignore[arg-type]
        active=key.revoked_at is None,
        created_at=key.created_at,
        created_by=key.created_by,
        revoked_at=key.revoked_at,
        revoked_by=key.revoked_by,
    )


def audit_event_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        seq=event.seq,
        created_at=event.created_at,
        actor=event.actor,
        action=event.action,
        outcome=event.outcome,
        client=event.client,
        request_id=event.request_id,
        detail=dict(event.detail),
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def job_out(job: Job) -> JobOut:
    return JobOut(**{name: getattr(job, name) for name in JobOut.model_fields})
