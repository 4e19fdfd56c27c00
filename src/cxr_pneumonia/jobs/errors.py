"""The errors a job request can meet; each a JSON 4xx at the API."""

from __future__ import annotations

from ..errors import CXRError


class JobBusy(CXRError):
    """Another job is queued or running (on this replica or another)."""

    code = "job_running"
    http_status = 409

    def __init__(self, running_id: str | None, kind: str = "", status: str = "") -> None:
        if running_id is None:  # it ended between our insert and our look: trying again will do
            super().__init__("another job was just ending: try again", code=self.code)
        else:
            super().__init__(f"{kind} job {running_id} is {status}: one job runs at a time", code=self.code)
        self.extra = {"running_job": running_id}


class JobUnavailable(CXRError):
    """This install cannot run this kind of job (no PyTorch, no `cxr tune`)."""

    code = "job_kind_unavailable"
    http_status = 409


class JobRejected(CXRError):
    """The job's parameters are not acceptable (a dataset outside the allow-list, ...)."""

    code = "job_rejected"
    http_status = 422


class JobNotFound(CXRError):
    code = "not_found"
    http_status = 404
