"""The shadow worker: every accepted input also goes through the shadow model, in the background.

Off the response's critical path: the request only puts (prediction id, bytes) on a bounded queue; a
full queue drops the input and counts it (a shadow must never slow or fail the answer).
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from ..errors import CXRError
from ..inference import Predictor

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) loads only where a service passes one in
    from ..store.facade import Store

log = logging.getLogger(__name__)


SHADOW_NICENESS = 19


def _lower_this_threads_priority() -> None:
    """On Linux a thread has its own nice value: the shadow (one ONNX Runtime thread, run on this
    one) then only gets the CPU the answers leave. Elsewhere it runs at normal priority."""
    set_priority = getattr(os, "setpriority", None)
    if set_priority is None or not sys.platform.startswith("linux"):
        return
    try:
        set_priority(os.PRIO_PROCESS, threading.get_native_id(), SHADOW_NICENESS)
    except OSError as exc:
        log.warning("the shadow thread runs at normal priority: %s", exc)


class ShadowRunner:
    def __init__(self, store: Store, model: Callable[[], Predictor | None], size: int) -> None:
        self.store = store
        self.model = model
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=max(1, size))
        self.submitted = 0
        self.dropped = 0
        self.recorded = 0
        self.duplicates = 0  # inputs whose answer by this shadow was stored already
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="cxr-shadow", daemon=True)
        self._thread.start()

    def submit(self, prediction_id: str, data: bytes) -> bool:
        try:
            self._queue.put_nowait((prediction_id, data))
        except queue.Full:
            self.dropped += 1
            return False
        self.submitted += 1
        return True

    def pending(self) -> int:
        return self._queue.qsize()

    def join(self) -> None:
        """Wait until every queued input has been run and stored (tests, shutdown)."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def stats(self) -> dict[str, int]:
        return {
            "submitted": self.submitted,
            "recorded": self.recorded,
            "duplicates": self.duplicates,
            "dropped": self.dropped,
            "failed": self.failed,
            "pending": self.pending(),
        }

    def _run(self) -> None:
        _lower_this_threads_priority()
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._one(*item)
            finally:
                self._queue.task_done()

    def _one(self, prediction_id: str, data: bytes) -> None:
        predictor = self.model()  # looked up per input: a swapped shadow takes over at once
        if predictor is None:
            self.failed += 1
            return
        try:
            outcome = predictor.predict(data, heatmap=False)
            stored = self.store.record_shadow(prediction_id, outcome)
        except CXRError as exc:  # the shadow refused what the answering model accepted: worth keeping
            stored = self.store.record_shadow(prediction_id, (exc.code, asdict(predictor.model_ref)))
        except Exception:  # a broken shadow must never take the service down with it
            log.exception("the shadow model failed on an input")
            self.failed += 1
            return
        if stored is None:
            self.duplicates += 1
        else:
            self.recorded += 1
