"""Micro-batching: concurrent single-image requests share one ONNX Runtime call.

A server answers many callers one image at a time, but the model runs several images in one call for
little more than the cost of one. Each caller decodes its own image (in its own thread), then hands
the tensor to one inference thread, which runs up to ``max_batch`` images together. It waits for
company (at most ``max_wait_ms``) only while other callers are still decoding, so a lone request pays
no wait. Results are identical to ``Predictor.predict``.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future

from ..errors import CXRError
from ..imaging import Source
from .prediction import Prediction
from .predictor import BatchResult, Predictor, Prepared


class MicroBatcher:
    def __init__(self, predictor: Predictor, max_batch: int = 16, max_wait_ms: float = 3.0) -> None:
        self.predictor = predictor
        self.max_batch = max(1, max_batch)
        self.max_wait = max_wait_ms / 1000.0
        self._queue: queue.Queue[tuple[Prepared, float, Future[BatchResult]] | None] = queue.Queue()
        self._active = 0  # callers inside predict(): those not yet queued may still join a batch
        self._lock = threading.Lock()
        self._closing = False  # close() called: stop once the callers inside predict() are done
        self._stopped = False  # the inference thread has been told to end
        self._thread = threading.Thread(target=self._run, name="cxr-micro-batcher", daemon=True)
        self._thread.start()

    def predict(self, source: Source, *, use_cache: bool = True) -> Prediction:
        """Like Predictor.predict (heatmap included); raises InputError or RejectedImage."""
        with self._lock:
            stopped = self._stopped
            if not stopped:
                self._active += 1
        if stopped:  # a caller that picked this model just before a swap: served, unbatched
            return self.predictor.predict(source, use_cache=use_cache)
        try:
            return self._predict(source, use_cache)
        finally:
            with self._lock:
                self._active -= 1
                self._stop_if_idle()

    def close(self) -> None:
        """End the inference thread once every caller already inside predict() has its answer (a model
        swapped out lets its in-flight requests finish on it)."""
        with self._lock:
            self._closing = True
            self._stop_if_idle()

    def _stop_if_idle(self) -> None:
        if self._closing and not self._stopped and self._active == 0:
            self._stopped = True
            self._queue.put(None)

    def _predict(self, source: Source, use_cache: bool) -> Prediction:
        started = time.perf_counter()
        prepared = self.predictor.prepare(source)
        cache = self.predictor.cache
        if use_cache:
            cached = cache.get(prepared.xray.sha256, self.predictor.model_ref.cache_key)
            if cached is not None and cached.heatmap is not None:
                return cached.with_cached_flag()
        future: Future[BatchResult] = Future()
        self._queue.put((prepared, started, future))
        result = future.result()
        if isinstance(result, CXRError):
            raise result
        if use_cache:
            cache.put(result)
        return result

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:  # close(): nobody can queue any more
                return
            batch = [first]
            deadline = time.perf_counter() + self.max_wait
            while len(batch) < min(self.max_batch, self._active):
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is None:  # cannot happen while callers are active; kept for safety
                    self._queue.put(None)
                    break
                batch.append(item)
            try:
                results = self.predictor.infer(
                    [p for p, _, _ in batch], heatmap=True, started=[s for _, s, _ in batch]
                )
            except BaseException as exc:  # never leave a caller waiting forever
                for _, _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, _, future), result in zip(batch, results, strict=True):
                future.set_result(result)
