"""The drift monitors of the models that answer, as one store observer beside the door's metrics.

A door may serve more than one model (registry/serving.py: the champion, an A/B challenger, a hot swap
to a new package). Each package has its own reference, so each answering model gets its own
OnlineMonitor (state keyed by its digest in the database) and every prediction goes to the monitor of
the model that answered it. The primary model's monitor (the champion) feeds the door's sink
(Prometheus gauges); the others log their alarms and are read from the database (GET /monitoring).
Refusals carry no model: they count in the primary's window. Shadow predictions are never returned to
anyone and are not recorded through the observer, so they are not monitored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from ..config import Settings
from ..errors import CXRError
from ..inference import Predictor
from ..inference.prediction import Prediction
from ..store.facade import Store
from ..store.observer import Observers
from .online import MonitorSink, OnlineMonitor, new_monitor
from .provide import cached_reference

log = logging.getLogger(__name__)


class ModelMonitors:
    def __init__(self, store: Store, settings: Settings, sink: MonitorSink | None = None) -> None:
        self.store = store
        self.settings = settings
        self.sink = sink
        self._monitors: dict[str, OnlineMonitor] = {}
        self._primary: str | None = None
        self._lock = threading.Lock()  # follow() (a swap) against readers in request threads

    @classmethod
    def attach(
        cls, store: Store, settings: Settings, primary: Predictor | None, others: Sequence[Predictor] = (),
        sink: MonitorSink | None = None,
    ) -> ModelMonitors:  # fmt: skip
        """Monitors for the answering models, made one of the store's observers (after its metrics)."""
        monitors = cls(store, settings, sink)
        monitors.follow(primary, others)
        store.observer = Observers(store.observer, monitors)
        return monitors

    # ---- which models -----------------------------------------------------------------------------
    def follow(self, primary: Predictor | None, others: Sequence[Predictor] = ()) -> None:
        """Monitor exactly these models (called again after a swap): new ones get a monitor, models no
        longer served have theirs closed (after writing what they had queued)."""
        wanted = {p.model_ref.digest: p for p in ([primary] if primary is not None else []) + list(others)}
        primary_digest = primary.model_ref.digest if primary is not None else None
        with self._lock:
            retired = [self._monitors.pop(d) for d in list(self._monitors) if d not in wanted]
            if primary_digest != self._primary and primary_digest in self._monitors:
                retired.append(self._monitors.pop(primary_digest))  # its sink changes: a fresh monitor
            for digest, predictor in wanted.items():
                if digest not in self._monitors:
                    monitor = self._start(predictor, self.sink if digest == primary_digest else None)
                    if monitor is not None:
                        self._monitors[digest] = monitor
            self._primary = primary_digest
        for monitor in retired:
            monitor.close()

    def _start(self, predictor: Predictor, sink: MonitorSink | None) -> OnlineMonitor | None:
        if not self.settings.monitoring_enabled:
            return None
        try:
            reference = cached_reference(predictor, self.settings)
        except CXRError as exc:
            log.error("the monitoring reference of %s cannot be used, its drift is not monitored: %s",
                      predictor.model_ref.model_id, exc.detail)  # fmt: skip
            return None
        return new_monitor(self.store, predictor.model_ref.digest, reference, self.settings, sink)

    @property
    def primary(self) -> OnlineMonitor | None:
        """The champion's monitor (what GET /monitoring and the gauges show), if it has one."""
        return self._monitors.get(self._primary) if self._primary is not None else None

    def get(self, digest: str) -> OnlineMonitor | None:
        return self._monitors.get(digest)

    def monitors(self) -> list[OnlineMonitor]:
        return list(self._monitors.values())

    def close(self) -> None:
        with self._lock:
            monitors, self._monitors, self._primary = list(self._monitors.values()), {}, None
        for monitor in monitors:
            monitor.close()

    # ---- the store observer: cheap, never raises ----------------------------------------------------
    def observe_prediction(self, prediction: Prediction, source: str) -> None:
        monitor = self._monitors.get(prediction.model.digest)
        if monitor is not None:  # a model no longer served (a request begun before a swap) is not
            monitor.observe_prediction(prediction, source)

    def observe_refusal(self, reason: str, source: str) -> None:
        monitor = self.primary
        if monitor is not None:
            monitor.observe_refusal(reason, source)
