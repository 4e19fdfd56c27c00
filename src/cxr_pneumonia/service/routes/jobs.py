"""Training jobs (admin only): start one (a separate process; one at a time across replicas), read
its status, progress, log tail and result. The work is in jobs/; every start and end is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ...jobs import control, queue
from ..deps import CanManage, ContextDep, StateDep
from ..schemas.common import AUTH, responses
from ..schemas.jobs import JobIn, JobOut, JobsOut
from ..views import job_out

router = APIRouter(prefix="/admin/jobs", tags=["jobs"])
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.post("", response_model=JobOut, status_code=202, responses=responses(400, 409, *AUTH))
def start_job(principal: CanManage, ctx: ContextDep, state: StateDep, body: JobIn) -> JobOut:
    """Start a job. 409: another job is queued or running (``running_job`` names it), or this install
    cannot run the kind (the serving install offers recalibrate only). 422: bad parameters, or a
    dataset outside CXR_JOB_DATA_ROOTS."""
    champion = state.models.champion
    job = control.start(
        state.settings,
        state.store,
        body.kind,
        body.params(),
        model_path=champion.predictor.package.path if champion is not None else None,
        actor=principal.actor,
        client=ctx.client,
        request_id=ctx.request_id,
    )
    return job_out(job)


@router.get("", response_model=JobsOut, responses=responses(*AUTH))
def list_jobs(_principal: CanManage, state: StateDep) -> JobsOut:
    """The latest 50 jobs, newest first."""
    return JobsOut(jobs=[job_out(job) for job in queue.recent(state.store)])


@router.get("/{job_id}", response_model=JobOut, responses=responses(404, *AUTH))
def get_job(_principal: CanManage, state: StateDep, job_id: JobId) -> JobOut:
    return job_out(queue.get(state.store, job_id))
