"""The jobs table: create (the one-at-a-time claim), claim by the runner, heartbeat, finish, recover.

Every status change commits with its audit event in one transaction. The claim is the unique
``lock`` column: "active" on the one queued or running job, NULL on every other, so two replicas
inserting at the same moment cannot both succeed (the database refuses the second).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..store import audit as audit_chain
from ..store.db.base import utcnow
from ..store.db.models import Job
from ..store.facade import Store
from .errors import JobBusy, JobNotFound

ACTIVE = "active"
QUEUED, RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "queued", "running", "succeeded", "failed", "interrupted"
ENDED = (SUCCEEDED, FAILED, INTERRUPTED)
RUNNER_ACTOR = "job-runner"


def hostname() -> str:
    return socket.gethostname()[:255]


def _event(
    session: Session, action: str, actor: str, outcome: str, detail: dict[str, Any], **ctx: Any
) -> None:
    audit_chain.append(session, action=action, actor=actor, outcome=outcome, detail=detail, **ctx)


def running_job(session: Session) -> Job | None:
    return session.scalar(select(Job).where(Job.lock == ACTIVE))


def create(
    store: Store,
    kind: str,
    params: dict[str, Any],
    *,
    actor: str,
    client: str | None = None,
    request_id: str | None = None,
) -> Job:
    """A queued job holding the claim, audited as ``job_start``; JobBusy while another holds it."""
    job = Job(
        id=uuid.uuid4().hex,
        kind=kind,
        status=QUEUED,
        lock=ACTIVE,
        params=params,
        created_by=actor[:128],
        created_at=utcnow(),
        log_tail="",
        progress=0.0,
        stage="queued",
    )
    try:
        with store.transaction() as session:
            session.add(job)
            session.flush()  # the unique claim is checked here, before the audit event is written
            detail = {"job_id": job.id, "kind": kind, "params": params}
            _event(session, "job_start", actor, "ok", detail, client=client, request_id=request_id)
    except IntegrityError:
        with store.reading() as session:
            holder = running_job(session)
        if holder is None:  # it ended in between: the caller may simply try again
            raise JobBusy(None) from None
        raise JobBusy(holder.id, holder.kind, holder.status) from None
    return job


def get(store: Store, job_id: str) -> Job:
    with store.reading() as session:
        job = session.get(Job, job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job


def recent(store: Store, limit: int = 50) -> list[Job]:
    with store.reading() as session:
        return list(session.scalars(select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)))


def claim(store: Store, job_id: str) -> bool:
    """The runner takes its queued job (once: a second runner for the same id gets False)."""
    now = utcnow()
    with store.transaction() as session:
        done = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == QUEUED)
            .values(status=RUNNING, started_at=now, heartbeat_at=now, pid=os.getpid(), host=hostname())
        )
        return bool(getattr(done, "rowcount", 0))


def report(
    store: Store,
    job_id: str,
    *,
    progress: float | None = None,
    stage: str | None = None,
    log: str | None = None,
) -> None:
    """Heartbeat, with whatever changed (progress, stage, the log's tail)."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if progress is not None:
        values["progress"] = progress
    if stage is not None:
        values["stage"] = stage[:255]
    if log is not None:
        values["log_tail"] = log
    with store.transaction() as session:
        session.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING).values(**values))


def finish(
    store: Store,
    job_id: str,
    status: str,
    *,
    error: str | None = None,
    result: dict[str, Any] | None = None,
    log: str | None = None,
    actor: str = RUNNER_ACTOR,
) -> None:
    """End the job (releasing the claim) and audit it as ``job_finish``."""
    values: dict[str, Any] = {"status": status, "lock": None, "finished_at": utcnow(), "error": error}
    if status == SUCCEEDED:
        values.update(progress=1.0, stage="done")
    if result is not None:
        values["result"] = result
    if log is not None:
        values["log_tail"] = log
    with store.transaction() as session:
        job = session.get(Job, job_id)
        if job is None or job.status in ENDED:
            return
        session.execute(update(Job).where(Job.id == job_id).values(**values))
        detail: dict[str, Any] = {"job_id": job_id, "kind": job.kind, "status": status}
        if error:
            detail["error"] = error[:500]
        if result and result.get("digest"):
            detail.update(digest=result["digest"], model_id=result.get("model_id"))
        outcome = "ok" if status == SUCCEEDED else status
        _event(session, "job_finish", actor, outcome, detail)


def _process_gone(pid: int | None) -> bool:
    """No such process on this host, or only its zombie (ended, not yet reaped)."""
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # someone else's process with that id: the heartbeat decides
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return False


def recover(store: Store, stale_seconds: float) -> list[str]:
    """Mark as interrupted a job whose runner is gone: its process has ended (same host), or it has
    not sent a heartbeat for ``stale_seconds`` (any host). Returns the ids marked."""
    with store.reading() as session:
        job = running_job(session)
    if job is None:
        return []
    last = job.heartbeat_at or job.created_at
    stale = utcnow() - last > timedelta(seconds=stale_seconds)
    gone = job.status == RUNNING and job.host == hostname() and _process_gone(job.pid)
    if not (stale or gone):
        return []
    reason = "its runner process is gone" if gone else f"no heartbeat for over {stale_seconds:.0f} s"
    finish(store, job.id, INTERRUPTED, error=f"interrupted: {reason} (a restart or a crash)", actor="service")
    return [job.id]
