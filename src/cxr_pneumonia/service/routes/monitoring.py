"""GET /monitoring: drift windows, each test, alarms and the reviewed performance (admin, auditor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...monitoring.status import monitoring_status
from ..deps import CanReadAudit, StateDep
from ..schemas.common import AUTH, responses
from ..schemas.monitoring import MonitoringOut

router = APIRouter(tags=["monitoring"])


@router.get("/monitoring", response_model=MonitoringOut, responses=responses(*AUTH))
def monitoring(
    _principal: CanReadAudit,
    state: StateDep,
    history: Annotated[int, Query(ge=1, le=2000, description="evaluations in the history")] = 200,
) -> MonitoringOut:
    return MonitoringOut(**monitoring_status(state.store, state.settings, state.monitor, history=history))
