"""What one running app holds: settings, store, the served models (or why there are none), limiter,
token issuer."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..config import Settings
from ..errors import ModelError
from ..inference import Predictor
from ..monitoring.online import OnlineMonitor
from ..monitoring.served import ModelMonitors
from ..registry.serving import CHAMPION, ModelLoader, ModelRouter, ServedModel
from ..store.facade import Store
from .cache import build_cache
from .login_throttle import LoginThrottle
from .ratelimit import RateLimiter
from .security.tokens import TokenIssuer


@dataclass
class ServiceState:
    settings: Settings
    store: Store
    limiter: RateLimiter
    tokens: TokenIssuer
    models: ModelRouter
    monitors: ModelMonitors | None = None  # drift monitoring of the answering models (monitoring/)
    slots: threading.BoundedSemaphore = field(init=False)

    login_throttle: LoginThrottle = field(init=False)

    def __post_init__(self) -> None:
        self.login_throttle = LoginThrottle(self.settings, self.limiter, self.store)
        limit = self.settings.inference_concurrency or os.cpu_count() or 1
        self.slots = threading.BoundedSemaphore(max(1, limit))

    @property
    def predictor(self) -> Predictor | None:
        """The champion's predictor (the one that answers when no A/B split applies)."""
        champion = self.models.champion
        return champion.predictor if champion is not None else None

    @property
    def monitor(self) -> OnlineMonitor | None:
        """The champion's drift monitor (GET /monitoring, the gauges), if it has one."""
        return self.monitors.primary if self.monitors is not None else None

    @property
    def model_error(self) -> str | None:
        return self.models.errors.get(CHAMPION)

    def route(self, key: str) -> ServedModel:
        """The model (champion or challenger) that answers the input or study ``key``."""
        served = self.models.route(key)
        if served is None or served.batcher is None:
            raise ModelError(f"no model is being served: {self.model_error}")
        return served

    def require_champion(self) -> ServedModel:
        champion = self.models.champion
        if champion is None:
            raise ModelError(f"no model is being served: {self.model_error}")
        return champion

    def require_predictor(self) -> Predictor:
        return self.require_champion().predictor

    @contextmanager
    def inference_slot(self) -> Iterator[None]:
        """Inference is CPU-bound: more runs at once than cores only adds switching and tail latency,
        so requests beyond the limit wait here (in their worker thread) for a free slot."""
        with self.slots:
            yield


def start_models(settings: Settings, store: Store, predictor: Predictor | None = None) -> ModelRouter:
    """Load the champion (and any challenger and shadow); a model that cannot be loaded leaves its
    reason (the service then runs, reporting not ready), never a silent fallback."""
    router = ModelRouter(settings, store, ModelLoader(settings, cache=build_cache(settings)))
    return router.start(champion=predictor)
