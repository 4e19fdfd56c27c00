"""Thin routes, one module per resource; ``api_router`` mounts them all under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..deps import API_PREFIX
from ..strict import known_query_only
from . import admin, audit, auth, jobs, mfa, models, monitoring, predict, predictions, sessions, system

api_router = APIRouter(prefix=API_PREFIX, dependencies=[Depends(known_query_only)])
for module in (system, models, auth, mfa, sessions, predict, predictions, admin, jobs, audit, monitoring):
    api_router.include_router(module.router)
root_router = system.root_router
