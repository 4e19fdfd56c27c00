"""The FastAPI app factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from .. import DISCLAIMER, __version__, logs
from ..config import Settings
from ..inference import Predictor
from ..integration.fhir_push import FhirPublisher
from ..jobs.control import recover_at_start
from ..monitoring.provide import card_sensitivity
from ..monitoring.served import ModelMonitors
from ..registry.serving import CHAMPION, ModelRouter, ServedModel
from ..store.facade import Store
from ..store.jwt_keys import keyring_for
from . import errors, metrics
from .deps import API_PREFIX
from .middleware import BodyLimitMiddleware, RequestContextMiddleware
from .ratelimit import RateLimiter
from .routes import api_router, root_router
from .routes.dicomweb import router as dicomweb_router
from .security.tokens import TokenIssuer
from .state import ServiceState, start_models

log = logging.getLogger(__name__)

FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and part headers around one file
JSON_BODY_BYTES = 1024 * 1024


def body_limits(settings: Settings) -> dict[str, int]:
    return {
        f"{API_PREFIX}/predict": settings.max_bytes + FORM_OVERHEAD_BYTES,
        f"{API_PREFIX}/predict/batch": settings.batch_max_bytes,
        "/dicomweb/studies": settings.dicomweb_max_request_bytes,  # each instance: max_bytes (STOW-RS)
    }


def create_app(settings: Settings | None = None, predictor: Predictor | None = None) -> FastAPI:
    """Open the store (running migrations), load and verify the model, and build the app.

    A model that cannot be loaded does not stop the app: it starts, /health/ready reports why, and the
    routes that need the model answer 503 (never a silent fallback).
    """
    settings = settings or Settings()
    fhir = FhirPublisher.from_settings(settings)  # None unless CXR_FHIR_URL
    # the store's commits feed our Prometheus counters (and the FHIR push)
    store = Store.from_settings(settings, observer=metrics, publisher=fhir)
    for job_id in recover_at_start(settings, store):  # its runner died with the last run of the service
        log.warning("job %s was running when the service stopped: marked interrupted", job_id)
    models = start_models(settings, store, predictor)
    if models.champion is not None:
        metrics.set_model(models.champion.predictor.model_ref)
        metrics.set_card(
            models.champion.predictor.model_ref.model_id, card_sensitivity(models.champion.predictor)
        )
    # the store's commits and refusals also feed the drift monitors of the answering models (a
    # background writer each), beside the metrics; a swap moves them to the new package
    monitors = ModelMonitors.attach(store, settings, *models.answering(), sink=metrics.MonitorMetrics())
    metrics.set_monitor_active(monitors.primary is not None)
    models.on_swap.append(_announce_champion)
    models.on_swap.append(lambda _served: _follow(monitors, models))
    state = ServiceState(
        settings=settings,
        store=store,
        limiter=RateLimiter(settings),
        tokens=TokenIssuer(keyring_for(store), settings.token_minutes),
        models=models,
        monitors=monitors,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if fhir is not None:
            fhir.start(store.is_recorded)
        models.start_polling()  # alias moves are picked up while the app serves
        yield
        models.close()
        monitors.close()
        if fhir is not None:
            fhir.stop()
        store.close()

    # Hospital networks are often cut off from the internet: the docs pages' scripts are served by us.
    app = FastAPIOffline(
        static_url="/docs/assets",
        title="CXR Pneumonia Detector",
        version=__version__,
        description=f"Pneumonia on chest radiographs, with heatmaps, calibrated confidence and referral. {DISCLAIMER}",
        lifespan=lifespan,
    )
    app.state.cxr = state
    errors.install(app)
    limits = body_limits(settings)
    app.add_middleware(BodyLimitMiddleware, limit_for=lambda path: limits.get(path, JSON_BODY_BYTES))
    app.add_middleware(RequestContextMiddleware)  # added last: outermost, so every response gets its id
    app.include_router(api_router)
    app.include_router(root_router)
    app.include_router(dicomweb_router)
    _mount_web(app, settings)
    return app


def _announce_champion(served: ServedModel) -> None:
    if served.role == CHAMPION:
        metrics.set_model(served.predictor.model_ref)
        metrics.set_card(served.predictor.model_ref.model_id, card_sensitivity(served.predictor))


def _follow(monitors: ModelMonitors, models: ModelRouter) -> None:
    monitors.follow(*models.answering())
    metrics.set_monitor_active(monitors.primary is not None)


def _mount_web(app: FastAPI, settings: Settings) -> None:
    """The web page (static files, no CDN) at /, when it has been built into the package."""
    if (settings.web_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=settings.web_dir, html=True), name="web")
    else:
        log.info("no web page at %s; serving the API only", settings.web_dir)


def create_app_from_env() -> FastAPI:
    """Import-string factory for ``uvicorn --factory`` (several workers each build their own app)."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)  # a spawned worker starts unconfigured
    return create_app(settings)
