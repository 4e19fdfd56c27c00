"""The result cache the service gives its Predictor: in memory, or Redis shared by all replicas."""

from __future__ import annotations

import logging

from ..config import Settings
from ..inference.cache import MemoryCache, RedisCache, ResultCache
from ..inference.prediction import Prediction

log = logging.getLogger(__name__)


class FailOpenCache:
    """A cache is an optimisation: when Redis is down, predict without it instead of failing requests."""

    def __init__(self, inner: ResultCache) -> None:
        self.inner = inner

    def get(self, input_sha256: str, model_sha256: str) -> Prediction | None:
        try:
            return self.inner.get(input_sha256, model_sha256)
        except Exception as exc:
            log.warning("result cache read failed (%s); predicting without it", type(exc).__name__)
            return None

    def put(self, prediction: Prediction) -> None:
        try:
            self.inner.put(prediction)
        except Exception as exc:
            log.warning("result cache write failed (%s)", type(exc).__name__)


def build_cache(settings: Settings) -> ResultCache:
    if settings.redis_url:
        return FailOpenCache(RedisCache(settings.redis_url, prefix=f"{settings.redis_prefix}:result:"))
    return MemoryCache(settings.result_cache_size)
