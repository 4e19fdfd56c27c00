"""Optional push of every accepted prediction to a FHIR server (CXR_FHIR_URL), through the shared
persistent outbox (store/outbox.py): retried with back-off while the server is down, nothing lost.

Each bundle is a ``transaction`` of PUTs by id, POSTed to the server's base URL: a retry after a lost
answer updates the same resources, never copies them. The bundle is written (``.staged``) before the
prediction's transaction commits and released into the outbox right after; a crash in between leaves
a staged file that the next start releases if the prediction is on record, or deletes if it is not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from ..config import Settings
from ..store.db.models import PredictionRecord
from ..store.fsio import write_durably
from ..store.outbox import Delivery, FileOutbox, OutboxSender, RetryPolicy
from .fhir import prediction_bundle

log = logging.getLogger(__name__)

SUFFIX = ".json"
STAGED = ".staged"
FHIR_JSON = "application/fhir+json"
LINK_STATUSES = frozenset({408, 429, 500, 502, 503, 504})  # the server, not this bundle: back off as a whole


def post_bundles(base_url: str, timeout: float) -> Callable[[Sequence[Path]], list[Delivery]]:
    """The outbox's delivery: POST each bundle file to the FHIR base URL."""

    def deliver(paths: Sequence[Path]) -> list[Delivery]:
        results: list[Delivery] = []
        with httpx.Client(timeout=timeout, headers={"Accept": FHIR_JSON}) as http:
            for index, path in enumerate(paths):
                try:
                    response = http.post(
                        base_url, content=path.read_bytes(), headers={"Content-Type": FHIR_JSON}
                    )
                except httpx.TransportError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    return results + [Delivery(p, error, link_failed=True) for p in paths[index:]]
                except OSError as exc:
                    results.append(Delivery(path, f"unreadable bundle file: {exc}"))
                    continue
                if response.is_success:
                    results.append(Delivery(path, None))
                elif response.status_code in LINK_STATUSES:
                    error = f"HTTP {response.status_code}"
                    return results + [Delivery(p, error, link_failed=True) for p in paths[index:]]
                else:  # the server refuses this bundle (400, 422, ...): retried, parked after max attempts
                    results.append(Delivery(path, f"HTTP {response.status_code}: {response.text[:200]}"))
        return results

    return deliver


class FhirPublisher:
    """What the Store calls around each prediction's commit; owns the outbox and its sender thread."""

    def __init__(self, root: Path, base_url: str, retry: RetryPolicy, *, timeout: float = 30.0) -> None:
        self.outbox = FileOutbox(root, pending="outbox", failed="outbox-failed", suffix=SUFFIX)
        self.sender = OutboxSender(self.outbox, post_bundles(base_url, timeout), retry,
                                   destination=base_url, name="fhir-sender")  # fmt: skip

    @classmethod
    def from_settings(cls, settings: Settings) -> FhirPublisher | None:
        if not settings.fhir_url:
            return None
        retry = RetryPolicy(settings.fhir_retry_initial_seconds, settings.fhir_retry_max_seconds,
                            settings.fhir_retry_max_attempts)  # fmt: skip
        return cls(
            settings.data_dir / "fhir", settings.fhir_url, retry, timeout=settings.fhir_timeout_seconds
        )

    # ---- around the commit (called by the Store) ------------------------------------------------
    def stage(self, row: PredictionRecord) -> Path:
        bundle = prediction_bundle(row, "transaction")
        return write_durably(
            self.outbox.pending_dir / f"{row.id}{SUFFIX}{STAGED}", json.dumps(bundle).encode()
        )

    def release(self, staged: Path) -> None:
        """The prediction committed: its bundle joins the outbox."""
        staged.replace(staged.with_name(staged.name.removesuffix(STAGED)))
        self.sender.wake()

    def discard(self, staged: Path) -> None:
        staged.unlink(missing_ok=True)

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self, is_recorded: Callable[[str], bool]) -> None:
        """Settle what a crash left staged, then send."""
        for staged in sorted(self.outbox.pending_dir.glob(f"*{SUFFIX}{STAGED}")):
            prediction_id = staged.name.removesuffix(f"{SUFFIX}{STAGED}")
            if is_recorded(prediction_id):
                self.release(staged)
            else:
                log.warning("FHIR bundle %s dropped: its prediction was never committed", prediction_id)
                self.discard(staged)
        self.sender.start()

    def stop(self) -> None:
        self.sender.stop()
