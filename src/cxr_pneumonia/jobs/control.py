"""What the service calls: start a job (validated, claimed, launched), and recover at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Settings
from ..store.db.models import Job
from ..store.facade import Store
from . import queue
from .kinds import validate
from .launch import launch


def start(
    settings: Settings,
    store: Store,
    kind: str,
    params: dict[str, Any],
    *,
    model_path: Path | None,
    actor: str,
    client: str | None = None,
    request_id: str | None = None,
) -> Job:
    """Check the request, take the one-at-a-time claim and start the runner process.

    ``model_path``: the package a recalibration refits (the served champion's)."""
    checked = validate(settings, kind, params)
    if kind == "recalibrate":
        if model_path is None:
            from .errors import JobUnavailable

            raise JobUnavailable("no model is being served: there is nothing to recalibrate")
        checked["model"] = str(model_path.resolve())
    queue.recover(store, settings.job_stale_seconds)  # a crashed runner must not hold the claim forever
    job = queue.create(store, kind, checked, actor=actor, client=client, request_id=request_id)
    try:
        launch(settings, job.id)
    except OSError as exc:
        queue.finish(
            store, job.id, queue.FAILED, error=f"the job's process could not start: {exc}", actor=actor
        )
    return queue.get(store, job.id)


def recover_at_start(settings: Settings, store: Store) -> list[str]:
    """At service start: a running job whose process is gone (or silent) is marked interrupted."""
    return queue.recover(store, settings.job_stale_seconds)
