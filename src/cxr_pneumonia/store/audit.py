"""The audit trail: a hash chain of events, and the walk that checks it.

Each event's ``hash`` is the sha256 of its predecessor's hash and its own canonical fields, so altering,
removing or inserting an event breaks the chain at that point. Accepted predictions also carry a digest
that their audit event repeats, so a changed prediction row is caught too. (A chain cannot by itself
show that its newest events were cut off: record the head hash that ``cxr audit verify`` prints
somewhere else, e.g. a ticket or a log collector, to anchor it.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from .db.base import iso, utcnow
from .db.models import AuditEvent, PredictionRecord
from .digest import canonical_json, json_safe, prediction_digest

GENESIS = "0" * 64
_PG_CHAIN_LOCK = 0x6378_6175  # "cxau"


def event_hash(event: AuditEvent) -> str:
    body = {
        "seq": event.seq,
        "at": iso(event.created_at),
        "actor": event.actor,
        "action": event.action,
        "outcome": event.outcome,
        "client": event.client,
        "request_id": event.request_id,
        "detail": event.detail,
    }
    return hashlib.sha256(f"{event.prev_hash}\n{canonical_json(body)}".encode()).hexdigest()


def append(
    session: Session,
    *,
    action: str,
    actor: str,
    outcome: str,
    client: str | None = None,
    request_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add the next event to the chain in the caller's transaction (which must commit it)."""
    if session.get_bind().dialect.name == "postgresql":
        # Serialise appenders across connections and replicas until this transaction ends. (SQLite
        # transactions begin IMMEDIATE, which serialises them already; see db.engine.)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_CHAIN_LOCK})
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    event = AuditEvent(
        seq=(head.seq + 1) if head else 1,
        created_at=utcnow(),
        actor=actor[:128],
        action=action[:64],
        outcome=outcome[:16],
        client=client[:64] if client else None,
        request_id=request_id[:64] if request_id else None,
        detail=json_safe(detail or {}),
        prev_hash=head.hash if head else GENESIS,
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    return event


@dataclass
class ChainReport:
    ok: bool
    events: int = 0
    predictions: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    first_bad_seq: int | None = None
    first_bad_prediction: str | None = None
    # altered | removed | inserted | prediction_altered | prediction_unaudited | prediction_removed
    problem: str | None = None
    detail: str = "the audit chain is intact"
    checked: list[str] = field(default_factory=lambda: ["chain", "predictions"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _events(session: Session) -> Iterator[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=1000)
    yield from session.scalars(query)


def verify(session: Session) -> ChainReport:
    """Walk the chain from the first event and name the first that was altered, removed or inserted;
    then check every prediction against the digest its audit event recorded."""
    report = ChainReport(ok=True)
    expected_seq, expected_prev, previous_seq = 1, GENESIS, None
    audited: dict[str, tuple[int, str]] = {}  # prediction id -> (event seq, digest)
    for event in _events(session):
        if event.seq != expected_seq:
            return _fail(
                report,
                expected_seq,
                "removed",
                f"events {expected_seq}..{event.seq - 1} are missing: removed from the chain",
            )
        if event.prev_hash != expected_prev:
            bad = previous_seq if previous_seq is not None else event.seq
            return _fail(
                report,
                bad,
                "inserted",
                f"event {event.seq} does not follow event {bad}: event {bad} was inserted or replaced",
            )
        if event_hash(event) != event.hash:
            return _fail(report, event.seq, "altered", f"event {event.seq} ({event.action}) was altered")
        if event.action == "predict" and event.outcome == "accepted" and "prediction_id" in event.detail:
            audited[str(event.detail["prediction_id"])] = (event.seq, str(event.detail.get("digest")))
        report.events += 1
        report.head_seq, report.head_hash = event.seq, event.hash
        expected_seq, expected_prev, previous_seq = event.seq + 1, event.hash, event.seq
    return _verify_predictions(session, report, audited)


def _verify_predictions(
    session: Session, report: ChainReport, audited: dict[str, tuple[int, str]]
) -> ChainReport:
    query = select(PredictionRecord).order_by(PredictionRecord.created_at).execution_options(yield_per=500)
    for row in session.scalars(query):
        report.predictions += 1
        entry = audited.pop(row.id, None)
        if entry is None:
            return _fail_prediction(
                report,
                row.id,
                "prediction_unaudited",
                f"prediction {row.id} has no audit event (inserted, or its event was cut off)",
            )
        if prediction_digest(row) != entry[1] or row.digest != entry[1]:
            return _fail_prediction(
                report,
                row.id,
                "prediction_altered",
                f"prediction {row.id} differs from what audit event {entry[0]} recorded",
            )
    if audited:
        missing, (seq, _) = next(iter(audited.items()))
        return _fail_prediction(
            report,
            missing,
            "prediction_removed",
            f"prediction {missing} recorded by audit event {seq} is missing",
        )
    return report


def _fail(report: ChainReport, seq: int, problem: str, detail: str) -> ChainReport:
    report.ok, report.first_bad_seq, report.problem, report.detail = False, seq, problem, detail
    return report


def _fail_prediction(report: ChainReport, prediction_id: str, problem: str, detail: str) -> ChainReport:
    report.ok, report.first_bad_prediction, report.problem, report.detail = (
        False,
        prediction_id,
        problem,
        detail,
    )
    return report


@dataclass(frozen=True)
class EventFilter:
    action: str | None = None
    actor: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.action:
            query = query.where(AuditEvent.action == self.action)
        if self.actor:
            query = query.where(AuditEvent.actor == self.actor)
        if self.outcome:
            query = query.where(AuditEvent.outcome == self.outcome)
        if self.since is not None:
            query = query.where(AuditEvent.created_at >= self.since)
        if self.until is not None:
            query = query.where(AuditEvent.created_at < self.until)
        return query


def list_events(
    session: Session, where: EventFilter, *, limit: int, offset: int, newest_first: bool = False
) -> tuple[list[AuditEvent], int]:
    """A page in chain order (oldest first, as an auditor reads a ledger) or, for a screen that
    opens on what just happened, newest first; and the total count."""
    total = session.scalar(where.apply(select(func.count()).select_from(AuditEvent))) or 0
    order = AuditEvent.seq.desc() if newest_first else AuditEvent.seq
    rows = session.scalars(where.apply(select(AuditEvent)).order_by(order).limit(limit).offset(offset))
    return list(rows), int(total)
