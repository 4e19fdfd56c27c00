"""The online monitor the service and the DICOM node share: one compact row per input, appended to the
database; the drift tests every ``eval_every`` inputs or ``eval_seconds``, on the newest window, in a
background thread (never in a request); state (samples, evaluations with their alarm streaks) in the
database, so it survives restarts and is shared by replicas.

It is a store observer (store/observer.py): the store calls it after a prediction or a refusal has
committed. Monitoring never makes a prediction fail: any error while recording or evaluating is
logged and counted as a gap (``gaps`` and the sink's ``gap``), and the prediction is served as usual.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from ..config import Settings
from ..inference.prediction import Prediction
from ..store.db.base import utcnow
from ..store.db.models import MonitoringEvaluation, MonitoringSample
from ..store.facade import Store
from ..store.observer import Observers
from .detector import Detector, DriftConfig, TestResult, summarise
from .reference import Reference
from .sample import Sample, refused_sample

log = logging.getLogger(__name__)

# Replicas on PostgreSQL evaluate one at a time (SQLite's write transactions are serial already).
_PG_MONITOR_LOCK = 0x6378_6D6E  # "cxmn"
_QUEUE_SIZE = 10_000  # samples waiting for the writer; beyond this they are dropped (and counted)


@dataclass(frozen=True)
class Evaluation:
    id: int
    created_at: datetime
    model_digest: str
    last_sample_id: int
    window_size: int
    summary: dict[str, Any]
    results: list[dict[str, Any]]

    @classmethod
    def of(cls, row: MonitoringEvaluation) -> Evaluation:
        return cls(row.id, row.created_at, row.model_digest, row.last_sample_id, row.window_size,
                   dict(row.summary), list(row.results))  # fmt: skip

    def result(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.results if r["name"] == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "window_size": self.window_size,
            "summary": self.summary,
            "tests": self.results,
        }


class MonitorSink(Protocol):
    """Where a door shows the monitor (the service: Prometheus gauges and a gap counter)."""

    def publish(self, evaluation: Evaluation) -> None: ...

    def gap(self, reason: str, count: int) -> None: ...


class LogSink:
    """For doors without metrics (the DICOM node): gaps and alarms go to the log only."""

    def publish(self, evaluation: Evaluation) -> None:
        alarms = [kind for kind, s in evaluation.summary.items() if s.get("alarm")]
        if alarms:
            log.warning("drift alarm (%s) on the last %d inputs", ", ".join(alarms), evaluation.window_size)

    def gap(self, reason: str, count: int) -> None:
        pass


class OnlineMonitor:
    def __init__(
        self,
        store: Store,
        reference: Reference,
        model_digest: str,
        config: DriftConfig,
        *,
        keep_samples: int = 20_000,
        keep_evaluations: int = 5_000,
        sink: MonitorSink | None = None,
    ) -> None:
        self.store = store
        self.reference = reference
        self.model_digest = model_digest
        self.config = config
        self.detector = Detector(reference, config)
        self.keep_samples = max(keep_samples, config.window)
        self.keep_evaluations = max(keep_evaluations, 1)
        self.sink: MonitorSink = sink or LogSink()
        self.gaps: Counter[str] = Counter()
        self._queue: queue.Queue[tuple[datetime, Sample]] = queue.Queue(maxsize=_QUEUE_SIZE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()  # flush() from a test and the worker never interleave

    # ---- the store observer (request threads): cheap, never raises -------------------------------
    def observe_prediction(self, prediction: Prediction, source: str) -> None:
        try:
            if prediction.model.digest != self.model_digest:
                return  # a challenger or shadow model: not what this reference describes
            self._enqueue(self.reference.sample(prediction, source))
        except Exception:
            self._gap("observe_error", 1, exc_info=True)

    def observe_refusal(self, reason: str, source: str) -> None:
        try:
            self._enqueue(refused_sample(reason, source))
        except Exception:
            self._gap("observe_error", 1, exc_info=True)

    def _enqueue(self, sample: Sample) -> None:
        try:
            self._queue.put_nowait((utcnow(), sample))
        except queue.Full:
            self._gap("queue_full", 1)

    def _gap(self, reason: str, count: int, *, exc_info: bool = False) -> None:
        self.gaps[reason] += count
        log.error("monitoring gap (%s): %d input(s) not monitored", reason, count, exc_info=exc_info)
        try:
            self.sink.gap(reason, count)
        except Exception:
            log.exception("the monitoring sink failed")

    # ---- the background writer ---------------------------------------------------------------
    def start(self) -> OnlineMonitor:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cxr-monitor", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop the writer after it has written what is queued."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        wake = max(0.05, min(self.config.eval_seconds / 2.0, 5.0))
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=wake)
            except queue.Empty:
                first = None
            self.flush([first] if first is not None else [])
        self.flush()

    def flush(self, items: list[tuple[datetime, Sample]] | None = None) -> Evaluation | None:
        """Write queued samples, evaluate when due, publish the newest evaluation (any replica's)."""
        batch = list(items or [])
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        with self._write_lock:
            try:
                latest = self._write_and_evaluate(batch)
            except Exception:
                self._gap("write_error", max(1, len(batch)), exc_info=True)
                return None
        if latest is not None:
            try:
                self.sink.publish(latest)
            except Exception:
                log.exception("the monitoring sink failed")
        return latest

    def _write_and_evaluate(self, batch: list[tuple[datetime, Sample]]) -> Evaluation | None:
        with self.store.transaction() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MONITOR_LOCK})
            for at, sample in batch:
                session.add(MonitoringSample(created_at=at, model_digest=self.model_digest, source=sample.source[:16],
                                             accepted=sample.accepted, row=sample.to_row()))  # fmt: skip
            session.flush()
            last = self._latest(session)
            if not self._due(session, last):
                return Evaluation.of(last) if last is not None else None
            evaluation = self._evaluate(session, last)
            session.add(evaluation)
            session.flush()
            self._prune(session)
            return Evaluation.of(evaluation)

    def _latest(self, session: Session) -> MonitoringEvaluation | None:
        return session.scalars(
            select(MonitoringEvaluation)
            .where(MonitoringEvaluation.model_digest == self.model_digest)
            .order_by(MonitoringEvaluation.id.desc())
            .limit(1)
        ).first()

    def _due(self, session: Session, last: MonitoringEvaluation | None) -> bool:
        since = session.scalar(
            select(func.count(MonitoringSample.id)).where(
                MonitoringSample.model_digest == self.model_digest,
                MonitoringSample.id > (last.last_sample_id if last is not None else 0),
            )
        )
        if not since:
            return False
        if since >= self.config.eval_every or (last is None and since >= self.config.min_count):
            return True
        elapsed = (utcnow() - last.created_at).total_seconds() if last is not None else 0.0
        return last is not None and elapsed >= self.config.eval_seconds

    def _evaluate(self, session: Session, last: MonitoringEvaluation | None) -> MonitoringEvaluation:
        oldest = utcnow() - timedelta(seconds=self.config.window_seconds)
        rows = session.execute(
            select(MonitoringSample.id, MonitoringSample.row)
            .where(MonitoringSample.model_digest == self.model_digest, MonitoringSample.created_at >= oldest)
            .order_by(MonitoringSample.id.desc())
            .limit(self.config.window)
        ).all()
        window = [Sample.from_row(row) for _, row in reversed(rows)]
        streaks = {r["name"]: int(r.get("streak", 0)) for r in (last.results if last is not None else [])}
        results: list[TestResult] = self.detector.evaluate(window, streaks)
        return MonitoringEvaluation(
            created_at=utcnow(),
            model_digest=self.model_digest,
            last_sample_id=max((i for i, _ in rows), default=last.last_sample_id if last else 0),
            window_size=len(window),
            summary=_summary(results, window),
            results=[_json_safe(r.to_dict()) for r in results],
        )

    def _prune(self, session: Session) -> None:
        """Keep the tables bounded: the newest ``keep_samples`` samples, ``keep_evaluations`` evaluations."""
        for model, keep in (
            (MonitoringSample, self.keep_samples),
            (MonitoringEvaluation, self.keep_evaluations),
        ):
            newest = session.scalar(select(func.max(model.id)))
            if newest is not None and newest > keep:
                session.execute(delete(model).where(model.id <= newest - keep))

    # ---- reads (the API, the report) ------------------------------------------------------------
    def history(self, limit: int = 200) -> list[Evaluation]:
        return evaluations(self.store, self.model_digest, limit=limit)


def evaluations(
    store: Store, model_digest: str | None = None, *, since: datetime | None = None, limit: int = 200
) -> list[Evaluation]:
    """The newest evaluations (oldest first), of one model or all."""
    query = select(MonitoringEvaluation).order_by(MonitoringEvaluation.id.desc()).limit(limit)
    if model_digest is not None:
        query = query.where(MonitoringEvaluation.model_digest == model_digest)
    if since is not None:
        query = query.where(MonitoringEvaluation.created_at >= since)
    with store.reading() as session:
        return [Evaluation.of(row) for row in reversed(session.scalars(query).all())]


def window_samples(
    store: Store, model_digest: str, *, since: datetime | None = None, limit: int = 5_000
) -> list[Sample]:
    query = (
        select(MonitoringSample.row)
        .where(MonitoringSample.model_digest == model_digest)
        .order_by(MonitoringSample.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(MonitoringSample.created_at >= since)
    with store.reading() as session:
        return [Sample.from_row(row) for row in reversed(session.scalars(query).all())]


def _summary(results: list[TestResult], window: list[Sample]) -> dict[str, Any]:
    accepted = [s for s in window if s.accepted]
    summary: dict[str, Any] = dict(summarise(results))
    summary["rates"] = {
        "refer": sum(bool(s.refer) for s in accepted) / len(accepted) if accepted else None,
        "refusal": sum(not s.accepted for s in window) / len(window) if window else None,
        "pneumonia": sum(s.label == "pneumonia" for s in accepted) / len(accepted) if accepted else None,
    }
    return summary


def _json_safe(value: Any) -> Any:
    """NaN/inf (a degenerate test) become None: JSON columns and responses take no NaN."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def new_monitor(
    store: Store, predictor_digest: str, reference: Reference | None, settings: Settings,
    sink: MonitorSink | None = None,
) -> OnlineMonitor | None:  # fmt: skip
    """A started online monitor for one model (not yet anyone's observer); None when monitoring is off
    or there is no reference (logged: `cxr monitor reference` makes one)."""
    if not settings.monitoring_enabled:
        return None
    if reference is None:
        log.warning("the served package has no monitoring reference: drift is not monitored "
                    "(add one with `cxr monitor reference`)")  # fmt: skip
        return None
    return OnlineMonitor(
        store,
        reference,
        predictor_digest,
        DriftConfig.from_settings(settings),
        keep_samples=settings.monitoring_keep_samples,
        keep_evaluations=settings.monitoring_keep_evaluations,
        sink=sink,
    ).start()


def attach_monitor(
    store: Store, predictor_digest: str, reference: Reference | None, settings: Settings,
    sink: MonitorSink | None = None,
) -> OnlineMonitor | None:  # fmt: skip
    """Start an online monitor for one model and make it one of the store's observers (or None)."""
    monitor = new_monitor(store, predictor_digest, reference, settings, sink)
    if monitor is not None:
        store.observer = Observers(store.observer, monitor)
    return monitor
