"""Idempotency-Key: a retry after a lost response returns the record the first request made.

Keys are per caller and kept for a day. The request's fingerprint (route, parameters, the sha256 of
every file) is stored beside the key: the same key with another request is a conflict, not a replay.
The row is written in the prediction's transaction, after the audit chain's lock is taken, so two
concurrent requests with one key cannot both commit (the second finds the first's row).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..errors import CXRError
from .db.base import utcnow
from .db.models import IdempotencyRecord
from .errors import Conflict

KEPT_FOR = timedelta(days=1)
MAX_KEY_LENGTH = 255


class BadIdempotencyKey(CXRError):
    code = "bad_idempotency_key"
    http_status = 400


class KeyReused(Conflict):
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Claim:
    """What a request asks to be idempotent: its key, its fingerprint, and the batch item (0 alone)."""

    caller: str
    key: str
    request_sha256: str
    item: int = 0

    def for_item(self, item: int) -> Claim:
        return Claim(self.caller, self.key, self.request_sha256, item)


class Replay(Exception):
    def __init__(self, prediction_id: str) -> None:
        super().__init__(prediction_id)
        self.prediction_id = prediction_id


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise BadIdempotencyKey(f"an Idempotency-Key is 1-{MAX_KEY_LENGTH} printable ASCII characters")
    return key


def fingerprint(route: str, parameters: dict[str, object], file_sha256s: list[str]) -> str:
    text = "\n".join([route, *(f"{k}={parameters[k]}" for k in sorted(parameters)), *file_sha256s])
    return hashlib.sha256(text.encode()).hexdigest()


def earlier(session: Session, caller: str, key: str, request_sha256: str) -> dict[int, str]:
    """Prediction ids by item committed under this key within the day; KeyReused for another request."""
    since = utcnow() - KEPT_FOR
    rows = session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.caller == caller,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at >= since,
        )
    ).all()
    if any(row.request_sha256 != request_sha256 for row in rows):
        raise KeyReused("this Idempotency-Key was used for a different request; use a new key")
    return {row.item: row.prediction_id for row in rows}


def record(session: Session, claim: Claim, prediction_id: str) -> None:
    """Inside the prediction's transaction (chain lock held): raise Replay if the key already has it."""
    existing = session.get(IdempotencyRecord, (claim.caller, claim.key, claim.item))
    if existing is not None and existing.created_at >= utcnow() - KEPT_FOR:
        if existing.request_sha256 != claim.request_sha256:
            raise KeyReused("this Idempotency-Key was used for a different request; use a new key")
        raise Replay(existing.prediction_id)
    if existing is not None:  # older than a day: the key may be used again
        session.delete(existing)
        session.flush()
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - KEPT_FOR))
    session.add(
        IdempotencyRecord(
            caller=claim.caller,
            key=claim.key,
            item=claim.item,
            request_sha256=claim.request_sha256,
            prediction_id=prediction_id,
            created_at=utcnow(),
        )
    )
