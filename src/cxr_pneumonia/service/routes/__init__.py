"""Thin routes, one module per resource; ``api_router`` mounts them all under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import API_PREFIX
from . import admin, audit, auth, mfa, predict, predictions, sessions, system

api_router = APIRouter(prefix=API_PREFIX)
for module in (system, auth, mfa, sessions, predict, predictions, admin, audit):
    api_router.include_router(module.router)
root_router = system.root_router
