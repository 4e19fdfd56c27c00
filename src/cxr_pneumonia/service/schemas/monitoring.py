"""GET /monitoring (monitoring/status.py builds it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class MonitoringOut(BaseModel):
    active: bool = Field(description="whether the served model is monitored (its package has a reference)")
    model_digest: str | None = None
    config: dict[str, Any] | None = Field(None, description="window, evaluation period, alpha, persistence")
    reference: dict[str, Any] | None = None
    current: dict[str, Any] | None = Field(
        None, description="the newest evaluation: window size, per-kind summary, every test's statistic, "
        "p-value (raw and Holm-corrected), streak and alarm"
    )  # fmt: skip
    history: list[dict[str, Any]] = Field(description="evaluations, oldest first: scores, alarms, rates")
    gaps: dict[str, int] = Field(description="inputs the monitor could not record, by reason")
    reviewed: list[dict[str, Any]] = Field(
        description="per model version: sensitivity, specificity, PPV (Wilson 95% CI) and ECE on reviewed "
        "cases, once CXR_MONITORING_MIN_REVIEWS are in"
    )  # fmt: skip
