"""Tables. Changing one means a new Alembic revision in store/migrations/versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiKey(Base):
    """An integration credential. Only the sha256 of its secret is kept (the secret is 256 random bits,
    so a fast hash is enough and keeps per-request checks cheap, unlike a password hash)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)


class PredictionRecord(Base):
    """One accepted prediction, written once and never updated."""

    __tablename__ = "predictions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    caller: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16), index=True)
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    input_sha256: Mapped[str] = mapped_column(String(64), index=True)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    model_sha256: Mapped[str] = mapped_column(String(64))
    preprocess_version: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(16), index=True)
    p_pneumonia: Mapped[float] = mapped_column(Double)
    p_bacterial: Mapped[float] = mapped_column(Double)
    p_viral: Mapped[float] = mapped_column(Double)
    threshold: Mapped[float] = mapped_column(Double)
    refer: Mapped[bool] = mapped_column(Boolean, index=True)
    prediction_set: Mapped[list[str]] = mapped_column(JSON)
    ood_score: Mapped[float] = mapped_column(Double)
    ood_threshold: Mapped[float] = mapped_column(Double)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    input_meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON)
    cached: Mapped[bool] = mapped_column(Boolean)
    heatmap_png: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # 8-bit grey, model size
    # Revision 0002: the package digest, and the raw Grad-CAM peak and the package's reference scale
    # (None on older rows, and for version 1 packages, whose maps are scaled by their own peak).
    model_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    heatmap_peak: Mapped[float | None] = mapped_column(Double, nullable=True)
    heatmap_reference: Mapped[float | None] = mapped_column(Double, nullable=True)
    image_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    audit_seq: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    # The caller's own reference (an accession number, say), sealed like images (store/references.py)
    # with an HMAC beside it for exact-match search; never in the audit chain or the digest.
    reference_nonce: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    reference_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    reference_key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reference_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # Revision 0007: the model's raw (pre-temperature) logits, so a decision rule can be refitted on
    # reviewed cases without the image (jobs/, docs/jobs.md). None on older rows.
    logits: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)

    reviews: Mapped[list[Review]] = relationship(
        back_populates="prediction", order_by="Review.id", lazy="selectin"
    )

    __table_args__ = (Index("ix_predictions_model", "model_name", "model_version"),)

    @property
    def model_id(self) -> str:
        return f"{self.model_name}:{self.model_version}"


class Review(Base):
    """A clinician's confirmed label for a prediction. Several may exist; none is overwritten."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prediction_id: Mapped[str] = mapped_column(ForeignKey("predictions.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(16))
    subtype: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    prediction: Mapped[PredictionRecord] = relationship(back_populates="reviews")


class AuditEvent(Base):
    """A link of the audit chain: ``hash`` covers this event's fields and ``prev_hash``."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class StoredImage(Base):
    """A radiograph kept only with CXR_STORE_IMAGES: a lossless PNG of the decoded pixels (so no DICOM
    header, hence no patient identifier, is kept), AES-GCM encrypted, keyed by the input's sha256."""

    __tablename__ = "images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyRecord(Base):
    """A caller's Idempotency-Key and the prediction it produced (one row per accepted batch item),
    written in the prediction's own transaction so a retry can never make a second record."""

    __tablename__ = "idempotency_keys"

    caller: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    item: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0 for /predict; the index in a batch
    request_sha256: Mapped[str] = mapped_column(String(64))  # route, parameters and every file's sha256
    prediction_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ShadowPrediction(Base):
    """A shadow model's answer to an input another model answered: stored, never returned or sent."""

    __tablename__ = "shadow_predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str] = mapped_column(ForeignKey("predictions.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    model_digest: Mapped[str] = mapped_column(String(64), index=True)
    registry_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    label: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: the shadow refused it
    p_pneumonia: Mapped[float | None] = mapped_column(Double, nullable=True)
    refer: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    error: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the refusal's code
    inference_ms: Mapped[float | None] = mapped_column(Double, nullable=True)


class OneTimePassword(Base):
    """A user whose password was generated and shown once (the first admin): until it is changed,
    the user's tokens only allow setting a new password."""

    __tablename__ = "one_time_passwords"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TotpSecret(Base):
    """A user's TOTP seed (RFC 6238), AES-GCM encrypted with the store's key. ``last_step`` is the
    newest 30-second step accepted, so a code seen once is refused within its window."""

    __tablename__ = "totp_secrets"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecoveryCode(Base):
    """A one-time recovery code (80 random bits, so its sha256 is enough, as for API keys)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RefreshToken(Base):
    """A refresh token (only its sha256): used once, it is replaced by the next of its family; a used
    one presented again revokes the whole family (someone copied it)."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JwtKey(Base):
    """A JWT signing key (named by ``kid``), AES-GCM encrypted with the store's key, in the database
    so that every replica signs and verifies with the same keys. The newest signs; an older one still
    verifies until ``retires_at``."""

    __tablename__ = "jwt_keys"

    kid: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
_ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


class MonitoringSample(Base):
    """One input the production monitor saw (monitoring/sample.py: statistics, projection, outputs;
    nothing identifying). The monitor prunes the oldest beyond CXR_MONITORING_KEEP_SAMPLES."""

    __tablename__ = "monitoring_samples"

    id: Mapped[int] = mapped_column(_ROW_ID, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    model_digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    accepted: Mapped[bool] = mapped_column(Boolean)
    row: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_monitoring_samples_model", "model_digest", "id"),)


class MonitoringEvaluation(Base):
    """One run of the drift tests on the window ending at ``last_sample_id``; its streaks carry the
    alarm rule across restarts and replicas."""

    __tablename__ = "monitoring_evaluations"

    id: Mapped[int] = mapped_column(_ROW_ID, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    model_digest: Mapped[str] = mapped_column(String(64))
    last_sample_id: Mapped[int] = mapped_column(BigInteger)
    window_size: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)  # per kind: score, alarm
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # every test (detector.TestResult)

    __table_args__ = (Index("ix_monitoring_evaluations_model", "model_digest", "id"),)


class Job(Base):
    """A training job started from the service (jobs/): recalibrate, train or tune.

    ``lock`` is the one-at-a-time claim across every replica: "active" while the job is queued or
    running, NULL once it ended. A unique index allows one "active" row (NULLs never collide, on SQLite
    and PostgreSQL alike), so a second insert fails in the database itself, whichever replica tries.
    """

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    lock: Mapped[str | None] = mapped_column(String(8), nullable=True, unique=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    progress: Mapped[float | None] = mapped_column(Double, nullable=True)  # 0..1, None: not measured
    stage: Mapped[str | None] = mapped_column(String(255), nullable=True)
    log_tail: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
