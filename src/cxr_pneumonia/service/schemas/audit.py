"""The audit trail as the API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEventOut(BaseModel):
    seq: int
    created_at: datetime
    actor: str
    action: str
    outcome: str
    client: str | None
    request_id: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    total: int
    limit: int
    offset: int


class ChainReportOut(BaseModel):
    ok: bool
    events: int
    predictions: int
    head_seq: int | None
    head_hash: str | None
    first_bad_seq: int | None
    first_bad_prediction: str | None
    problem: str | None
    detail: str
    checked: list[str]
