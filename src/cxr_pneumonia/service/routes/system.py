"""Health, the model being served, and Prometheus metrics."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from ... import DISCLAIMER
from ...monitoring.performance import reviewed_performance
from .. import metrics
from ..deps import CanReadModel, MetricsAccess, StateDep
from ..schemas.common import AUTH, responses
from ..schemas.system import CheckOut, LiveOut, ModelCheckOut, ModelOut, ReadyOut

log = logging.getLogger(__name__)
router = APIRouter(tags=["system"])
# Prometheus scrapes /metrics by default: the same handler, outside /api/v1 and the schema.
root_router = APIRouter(include_in_schema=False)


@router.get("/health/live", response_model=LiveOut)
def live() -> LiveOut:
    """The process answers (no dependency is checked)."""
    return LiveOut()


@router.get("/health/ready", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
def ready(state: StateDep) -> JSONResponse:
    """The model package was verified and loaded, and the database answers now."""
    champion = state.models.champion
    if champion is None:
        model = ModelCheckOut(ok=False, detail=f"no model loaded: {state.model_error}")
    else:
        ref = champion.predictor.model_ref
        model = ModelCheckOut(
            ok=True,
            detail=f"{ref.model_id} (sha256 {ref.sha256[:12]}…) verified at load",
            model_id=ref.model_id,
            digest=ref.digest,
            registry_version=ref.registry_version,
        )
    try:
        state.store.ping()
        database = CheckOut(ok=True, detail=f"{state.store.engine.dialect.name} reachable")
    except Exception as exc:  # any driver error means "not reachable"; the type is enough to diagnose
        database = CheckOut(
            ok=False, detail=f"{state.store.engine.dialect.name} unreachable: {type(exc).__name__}"
        )
    ok = model.ok and database.ok
    reasons = state.models.degraded()
    status: Literal["ready", "degraded", "not_ready"] = (
        ("degraded" if reasons else "ready") if ok else "not_ready"
    )
    body = ReadyOut(status=status, model=model, database=database, reasons=reasons)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/models/current", response_model=ModelOut, responses=responses(503, *AUTH))
def current_model(_principal: CanReadModel, state: StateDep) -> ModelOut:
    package = state.require_predictor().package
    m = package.manifest
    return ModelOut(
        name=m.name,
        version=m.version,
        model_id=m.model_id,
        created=m.created,
        sha256=m.onnx_sha256,
        backbone=m.backbone,
        classes=list(m.classes),
        class_meaning=dict(m.class_meaning),
        preprocess=m.preprocess.to_dict(),
        calibration=dict(vars(m.calibration)),
        metrics=dict(m.metrics),
        training_data={k: v for k, v in m.training.items() if k != "config"},
        code_version=m.code_version,
        card=package.card_text(),
        disclaimer=DISCLAIMER,
    )


@root_router.get("/metrics", response_class=Response)
@router.get(
    "/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}, **responses(*AUTH)}
)
def prometheus_metrics(_access: MetricsAccess, state: StateDep) -> Response:
    settings = state.settings
    try:  # reviewed performance is read at scrape time (a few hundred rows); never fails the scrape
        metrics.set_reviewed(reviewed_performance(state.store, min_reviews=settings.monitoring_min_reviews,
                                                  window=settings.monitoring_review_window))  # fmt: skip
    except Exception:
        log.exception("reviewed performance could not be read")
    body, content_type = metrics.exposition(state.settings.prometheus_multiproc_dir)
    return Response(body, media_type=content_type)
