"""The error body every 4xx/5xx carries, and its OpenAPI response entries."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorItem(BaseModel):
    loc: list[str]
    msg: str
    type: str


class ErrorBody(BaseModel):
    error: str
    detail: str
    request_id: str | None
    reason: str | None = None  # refusals (422 rejected): why the image is not read
    errors: list[ErrorItem] | None = None  # validation errors (422)
    running_job: str | None = None  # 409 job_running: the job that holds the one-at-a-time claim


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    return {status: {"model": ErrorBody} for status in statuses}


AUTH = (401, 403, 422, 429)
