"""Training jobs (POST/GET /admin/jobs): what an administrator sends and reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class JobIn(BaseModel):
    """A job to start. recalibrate: holdout, seed, version; train: data, config, epochs, max_images;
    tune: data, config, trials, timeout (train and tune only where PyTorch is installed, on a path
    under CXR_JOB_DATA_ROOTS)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["recalibrate", "train", "tune"]
    holdout: float | None = Field(
        default=None,
        description="recalibrate: share of reviewed cases held out to measure on (0-0.5, default 0.3)",
    )
    seed: int | None = Field(default=None, description="recalibrate: seed of the held-out split (default 0)")
    version: str | None = Field(
        default=None, max_length=64, description="recalibrate: the new package's version"
    )
    data: str | None = Field(default=None, max_length=4096, description="train/tune: dataset folder or CSV")
    config: str | None = Field(default=None, max_length=4096, description="train/tune: YAML config")
    epochs: int | None = None
    max_images: int | None = None
    trials: int | None = None
    timeout: int | None = Field(default=None, description="tune: seconds")

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"kind"}).items() if v is not None}


class JobOut(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "interrupted"]
    params: dict[str, Any]
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    progress: float | None = Field(description="0 to 1; null where the job's work does not say")
    stage: str | None
    log_tail: str = Field(description="the last lines of the job's output")
    error: str | None
    result: dict[str, Any] | None = Field(
        description="when succeeded: package, digest, model_id, parent, evaluation (before/after and on"
        " which cases), registry"
    )


class JobsOut(BaseModel):
    jobs: list[JobOut]
