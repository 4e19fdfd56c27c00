"""Result cache keyed by (input sha256, model package digest): the same bytes on the same model give the
same answer, so a repeated upload costs a lookup, not an inference."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Protocol

from .prediction import Prediction


class ResultCache(Protocol):
    def get(self, input_sha256: str, model_key: str) -> Prediction | None: ...

    def put(self, prediction: Prediction) -> None: ...


class MemoryCache:
    """A thread-safe in-process LRU."""

    def __init__(self, max_items: int = 512) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[str, str], Prediction] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, input_sha256: str, model_key: str) -> Prediction | None:
        key = (input_sha256, model_key)
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, prediction: Prediction) -> None:
        if self.max_items <= 0:
            return
        key = (prediction.input_sha256, prediction.model.cache_key)
        with self._lock:
            self._items[key] = prediction
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class RedisCache:
    """The same cache shared by several replicas through Redis (``CXR_REDIS_URL``)."""

    def __init__(self, url: str, ttl_seconds: int = 7 * 24 * 3600, prefix: str = "cxr:result:") -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self.ttl = ttl_seconds
        self.prefix = prefix

    def _key(self, input_sha256: str, model_key: str) -> str:
        return f"{self.prefix}{model_key}:{input_sha256}"

    def get(self, input_sha256: str, model_key: str) -> Prediction | None:
        raw = self._redis.get(self._key(input_sha256, model_key))
        if raw is None:
            return None
        return Prediction.from_dict(json.loads(raw))

    def put(self, prediction: Prediction) -> None:
        payload = json.dumps(prediction.to_dict(include_heatmap=True, include_logits=True))
        self._redis.set(self._key(prediction.input_sha256, prediction.model.cache_key), payload, ex=self.ttl)
