"""What one running app holds: settings, store, predictor (or why it has none), limiter, token issuer."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..config import Settings
from ..errors import CXRError, ModelError
from ..imaging.limits import Limits
from ..inference import Predictor
from ..inference.batcher import MicroBatcher
from ..store.facade import Store
from .cache import build_cache
from .login_throttle import LoginThrottle
from .ratelimit import RateLimiter
from .security.tokens import TokenIssuer

log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    settings: Settings
    store: Store
    limiter: RateLimiter
    tokens: TokenIssuer
    predictor: Predictor | None
    model_error: str | None = None
    slots: threading.BoundedSemaphore = field(init=False)

    batcher: MicroBatcher | None = field(init=False, default=None)
    login_throttle: LoginThrottle = field(init=False)

    def __post_init__(self) -> None:
        self.login_throttle = LoginThrottle(self.settings, self.limiter, self.store)
        limit = self.settings.inference_concurrency or os.cpu_count() or 1
        self.slots = threading.BoundedSemaphore(max(1, limit))
        if self.predictor is not None:
            # concurrent POST /predict requests share ONNX Runtime calls (inference/batcher.py)
            self.batcher = MicroBatcher(self.predictor)

    def require_batcher(self) -> MicroBatcher:
        if self.batcher is None:
            raise ModelError(f"no model is being served: {self.model_error}")
        return self.batcher

    def require_predictor(self) -> Predictor:
        if self.predictor is None:
            raise ModelError(f"no model is being served: {self.model_error}")
        return self.predictor

    @contextmanager
    def inference_slot(self) -> Iterator[None]:
        """Inference is CPU-bound: more runs at once than cores only adds switching and tail latency,
        so requests beyond the limit wait here (in their worker thread) for a free slot."""
        with self.slots:
            yield


def load_predictor(settings: Settings) -> tuple[Predictor | None, str | None]:
    """The verified predictor, or None and the reason (the service then runs, reporting not ready)."""
    try:
        predictor = Predictor.from_package(
            settings.model_path,
            threads=settings.intra_op_threads,
            min_side=settings.min_side,
            limits=Limits.from_settings(settings),
            cache=build_cache(settings),
        )
    except CXRError as exc:
        log.error("the model package at %s cannot be served: %s", settings.model_path, exc.detail)
        return None, exc.detail
    return predictor, None
