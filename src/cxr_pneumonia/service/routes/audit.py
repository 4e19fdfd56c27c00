"""The audit trail: filtered pages, CSV export, and the chain check (auditor, admin)."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from ...store import audit as audit_chain
from ..deps import CanReadAudit, ContextDep, SessionDep, StateDep, audit_read
from ..params import Moment
from ..schemas.audit import AuditPage, ChainReportOut
from ..schemas.common import AUTH, responses
from ..views import audit_event_out

router = APIRouter(prefix="/audit", tags=["audit"])
Name = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:@-]{1,128}$")]
_CSV_COLUMNS = (
    "seq",
    "created_at",
    "actor",
    "action",
    "outcome",
    "client",
    "request_id",
    "detail",
    "prev_hash",
    "hash",
)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet would run a cell that starts like a formula (CSV injection): make it literal.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("", response_model=AuditPage, responses={200: {"content": {"text/csv": {}}}, **responses(*AUTH)})
def list_audit(
    principal: CanReadAudit,
    ctx: ContextDep,
    state: StateDep,
    session: SessionDep,
    action: Name = None,
    actor: Name = None,
    outcome: Annotated[Literal["ok", "accepted", "refused", "failed", "denied"] | None, Query()] = None,
    since: Annotated[Moment | None, Query()] = None,
    until: Annotated[Moment | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
    order: Annotated[
        Literal["oldest", "newest"],
        Query(description="oldest: chain order, as a ledger reads; newest: latest first"),
    ] = "oldest",
    format: Annotated[Literal["json", "csv"], Query(description="csv: a spreadsheet-safe export")] = "json",
) -> AuditPage | Response:
    where = audit_chain.EventFilter(action=action, actor=actor, outcome=outcome, since=since, until=until)
    events, total = audit_chain.list_events(
        session, where, limit=limit, offset=offset, newest_first=order == "newest"
    )
    items = [audit_event_out(e) for e in events]
    audit_read(session, state, ctx, principal, "read_audit", {"returned": len(items), "format": format})
    if format == "json":
        return AuditPage(items=items, total=total, limit=limit, offset=offset)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    for item in items:
        row = item.model_dump()
        row["created_at"] = item.created_at.isoformat()
        row["detail"] = json.dumps(item.detail, sort_keys=True)
        writer.writerow([_cell(row[c]) for c in _CSV_COLUMNS])
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="cxr-audit.csv"'},
    )


@router.get("/verify", response_model=ChainReportOut, responses=responses(*AUTH))
def verify_chain(
    principal: CanReadAudit, ctx: ContextDep, state: StateDep, session: SessionDep
) -> ChainReportOut:
    report = audit_chain.verify(session)
    audit_read(session, state, ctx, principal, "verify_audit", {"intact": report.ok, "events": report.events})
    return ChainReportOut(**report.to_dict())
