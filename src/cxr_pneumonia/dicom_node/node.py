"""The DICOM node: the SCP, the analysis worker and the result sender, wired together.

received ─► spool/incoming ─► worker: Predictor ─► outbox ─► sender ─► destination (PACS)
(C-STORE acknowledged          (SR + SC queued,            (back-off while the
 once on disk)                  prediction recorded)        destination is down)
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import logs
from ..config import Settings
from ..errors import ModelError
from ..inference import Predictor
from ..integration.fhir_push import FhirPublisher
from ..monitoring.online import OnlineMonitor
from ..monitoring.served import ModelMonitors
from ..store.facade import Store
from ..store.fsio import claim
from ..store.outbox import OutboxSender
from ..store.private import make_private
from ..store.spool import Spool
from .options import NodeOptions
from .outbox import Outbox, Sender
from .processor import Processor, ResultStore
from .scp import StorageSCP
from .stow import stow_files

if TYPE_CHECKING:
    from ..registry.serving import ModelRouter

log = logging.getLogger(__name__)

# An idle worker rescans the spool this often: for instances the service stored by STOW-RS, and for
# those another node sharing the spool has not taken (one that died, or was busy).
SPOOL_POLL_SECONDS = 1.0


class DicomNode:
    """Start with :meth:`start` (non-blocking), end with :meth:`stop`; also a context manager."""

    def __init__(
        self,
        options: NodeOptions,
        predictor: Predictor,
        store: ResultStore,
        models: ModelRouter | None = None,
    ) -> None:
        self.options = options
        self.store = store
        make_private(options.spool_dir)  # received instances carry patient headers
        self.models = models
        self.spool = Spool(options.spool_dir)
        self.outbox = Outbox(options.spool_dir)
        self.processor = Processor(
            predictor, store, self.outbox, refusal_sr=options.refusal_sr, models=models
        )
        self.scp = StorageSCP(options, self.spool, on_received=self._enqueue, on_rejected=self._rejected)
        self.sender: OutboxSender | None = None
        if options.destination_dicomweb:
            self.sender = OutboxSender(
                self.outbox,
                stow_files(options.destination_dicomweb, options.timeout_seconds),
                options.retry,
                destination=options.destination_dicomweb,
                name="dicomweb-sender",
                on_delivered=self._delivered,
                on_parked=self._parked,
            )
        elif options.destination is not None:
            self.sender = Sender(
                self.outbox,
                options.destination,
                options.ae_title,
                options.retry,
                timeout=options.timeout_seconds,
                on_delivered=self._delivered,
                on_parked=self._parked,
                tls=options.destination_context(),
            )
        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._queued: set[str] = set()  # names in the queue: a rescan of the spool adds only new ones
        self._queued_lock = threading.Lock()
        self._busy = threading.Event()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self.address: tuple[str, int] | None = None
        self.fhir: FhirPublisher | None = None  # the store's FHIR push, when the node opened the store
        self.monitors: ModelMonitors | None = None  # drift monitors, set by from_settings (monitoring/)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        options: NodeOptions | None = None,
        *,
        predictor: Predictor | None = None,
        store: ResultStore | None = None,
    ) -> DicomNode:
        """The node as Settings describe it: model package, database, options (unless given)."""
        from ..registry.serving import ModelLoader, ModelRouter

        options = options or NodeOptions.from_settings(settings)
        fhir = None
        if store is None:
            fhir = FhirPublisher.from_settings(settings)  # None unless CXR_FHIR_URL
            store = Store.from_settings(settings, publisher=fhir)
        if predictor is not None:
            node = cls(options, predictor, store)
            node.fhir = fhir
            if isinstance(store, Store):  # drift monitoring, shared with the service through the database
                node.monitors = ModelMonitors.attach(store, settings, predictor)
            return node
        # CXR_MODEL_URI (a path or models:/...), with the service's A/B split, shadow and hot swap
        if not isinstance(store, Store):
            raise ModelError("serving from the model URIs needs the shared Store")
        models = ModelRouter(settings, store, ModelLoader(settings)).start()
        if models.champion is None:
            raise ModelError(f"no model can be served: {models.errors.get('champion')}")
        # the drift monitors follow the models that answer, through every swap
        monitors = ModelMonitors.attach(store, settings, *models.answering())
        models.on_swap.append(lambda _served: monitors.follow(*models.answering()))
        models.start_polling()
        node = cls(options, models.champion.predictor, store, models)
        node.fhir = fhir
        node.monitors = monitors
        return node

    @property
    def monitor(self) -> OnlineMonitor | None:
        """The champion's drift monitor, if it has one."""
        return self.monitors.primary if self.monitors is not None else None

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> tuple[str, int]:
        """Analyse what a previous run acknowledged but did not finish, send what it did not deliver,
        then listen. Returns the bound (host, port)."""
        # A fresh queue: a stop may have left entries (and its end marker) in the old one.
        self._queue = queue.Queue()
        with self._queued_lock:
            self._queued.clear()
        backlog = self.spool.pending()
        if backlog:
            log.info("resuming %d received instance(s) left by a previous run", len(backlog))
        for path in backlog:
            self._enqueue(path)
        self._stopping.clear()
        self._worker = threading.Thread(target=self._work, name="dicom-worker", daemon=True)
        self._worker.start()
        if self.fhir is not None and isinstance(self.store, Store):
            self.fhir.start(self.store.is_recorded)
        if self.sender is not None:
            self.sender.start()
        else:
            log.warning("no destination configured: results wait in %s", self.outbox.pending_dir)
        if not self.options.accept_aes:
            log.warning("no calling AE titles configured: any DICOM peer may send instances")
        self.address = self.scp.start()
        return self.address

    def stop(self) -> None:
        """Stop listening, finish the instance being analysed, stop sending. What is still queued stays
        on disk for the next start."""
        self.scp.stop()
        if self._worker is not None:
            self._stopping.set()
            self._queue.put(None)
            self._worker.join()
            self._worker = None
        if self.sender is not None:
            self.sender.stop()
        if self.fhir is not None:
            self.fhir.stop()
        if self.models is not None:
            self.models.close()
        if self.monitors is not None:
            self.monitors.close()

    def __enter__(self) -> DicomNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_until_idle(self, timeout: float) -> bool:
        """True once nothing is waiting to be analysed or (with a destination) to be delivered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            analysing = self._busy.is_set() or not self._queue.empty() or bool(self.spool.pending())
            sending = self.sender is not None and bool(self.outbox.pending())
            if not analysing and not sending:
                return True
            if self.sender is not None and not analysing:
                self.sender.wake()
            time.sleep(0.1)
        return False

    # ---- callbacks and the worker ---------------------------------------------------------------
    def _enqueue(self, path: Path) -> None:
        with self._queued_lock:
            if path.name in self._queued:
                return
            self._queued.add(path.name)
        self._queue.put(path)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                path = self._queue.get(timeout=SPOOL_POLL_SECONDS)
            except queue.Empty:
                # Instances the service took by STOW-RS, or another node left, wait in the spool.
                for waiting in self.spool.pending():
                    self._enqueue(waiting)
                continue
            if path is None:
                return
            self._busy.set()
            try:
                self._analyse(path)
            finally:
                with self._queued_lock:
                    self._queued.discard(path.name)
                self._busy.clear()

    def _analyse(self, path: Path) -> None:
        with claim(path) as mine:
            if mine:  # else: handled already, or being handled by another node sharing the spool
                self._analyse_claimed(path)

    def _analyse_claimed(self, path: Path) -> None:
        job = Spool.job_id(path)
        try:
            with logs.request_scope(job):  # the job id is the DICOM door's request id
                outcome = self.processor.process(path, job)
        except Exception as exc:
            # A bug or our own I/O failure, not the sender's image: keep the instance in failed/ for a
            # person to look at (move it back to incoming/ to retry), and carry on with the others.
            log.exception("%s could not be processed; kept in %s", job, self.spool.failed)
            self.spool.park(path)
            self._safe_audit(
                "predict",
                outcome="failed",
                request_id=job,
                detail={"error": type(exc).__name__, "reason": "processing_error", "source": "dicom"},
            )
            return
        self.spool.finish(path, keep=self.options.keep_received)
        if outcome.queued and self.sender is not None:
            self.sender.wake()

    def _rejected(self, calling_ae: str, address: str) -> None:
        accepted = not self.options.accept_aes or calling_ae in self.options.accept_aes
        reason = "called AE title is not this node's" if accepted else "calling AE title not accepted"
        self._safe_audit("dicom.associate", actor=f"dicom:{calling_ae}", outcome="rejected", client=address,
                         detail={"reason": reason})  # fmt: skip

    def _delivered(self, path: Path) -> None:
        destination = str(self.options.destination)
        self._safe_audit(
            "dicom.send", outcome="delivered", detail={"result": path.stem, "destination": destination}
        )

    def _parked(self, path: Path, error: str, attempts: int) -> None:
        self._safe_audit("dicom.send", outcome="failed",
                         detail={"result": path.stem, "error": error, "attempts": attempts})  # fmt: skip

    def _safe_audit(self, action: str, *, actor: str | None = None, outcome: str, **kwargs: Any) -> None:
        """Audit from a network or worker thread: a database hiccup must not kill that thread."""
        try:
            self.store.audit(
                action, actor=actor or f"dicom:{self.options.ae_title}", outcome=outcome, **kwargs
            )
        except Exception:
            log.exception("could not write the audit event %s/%s", action, outcome)
