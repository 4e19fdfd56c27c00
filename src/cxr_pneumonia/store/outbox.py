"""A persistent outbox of results and the sender thread that empties it into a destination; used by
the DICOM node (DIMSE or DICOMweb destinations) and the FHIR push, each with its own delivery function.

A result is a file in the outbox from the moment it is created until the destination has taken it;
the sender retries with exponential back-off, so a destination that is down (or a restart) delays
results but loses none. With ``max_attempts`` set, a result that keeps failing is moved to the failed
folder (still on disk) instead of being retried forever. A result's failed attempts and next retry
time sit beside it (``<name>.retry.json``), so a restart neither forgets how often the destination
refused it nor retries everything at once. Several processes may share one outbox directory (replicas
on one volume): a result is sent only while its file is claimed (:func:`.fsio.claim`), so each is
sent once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from .fsio import claim, move_durably, remove_stale_partials, write_durably

log = logging.getLogger(__name__)

BATCH = 32  # results per delivery call: bounded, so one slow batch does not hold everything up
POLL_SECONDS = 2.0  # rescan even without a wake-up (cheap; covers files queued by a previous run)
RETRY_SUFFIX = ".retry.json"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off for results the destination did not take."""

    initial_seconds: float = 5.0
    max_seconds: float = 300.0
    max_attempts: int = 0  # 0: never give up (a result is parked only when this is set)

    def delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` consecutive failures (attempts >= 1)."""
        exponent = min(max(attempts - 1, 0), 30)  # 2**30 * anything already exceeds any sane cap
        return float(min(self.max_seconds, self.initial_seconds * (2**exponent)))

    def gives_up(self, attempts: int) -> bool:
        return self.max_attempts > 0 and attempts >= self.max_attempts


@dataclass(frozen=True)
class Delivery:
    path: Path
    error: str | None  # None: taken by the destination
    link_failed: bool = False  # the connection failed, not this result: says nothing about it

    @property
    def ok(self) -> bool:
        return self.error is None


Deliver = Callable[[Sequence[Path]], list[Delivery]]  # one batch out; one Delivery per path, in order


@dataclass
class Backoff:
    attempts: int = 0
    due: float = 0.0  # time.monotonic() before which the result is not retried
    last_error: str = ""


class FileOutbox:
    """``<root>/<pending>/*<suffix>``: results waiting; ``<root>/<failed>/``: results given up on."""

    def __init__(
        self, root: Path, *, pending: str = "outbox", failed: str = "outbox-failed", suffix: str
    ) -> None:
        self.pending_dir = root / pending
        self.failed_dir = root / failed
        self.suffix = suffix
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(self.pending_dir)

    def put_bytes(self, stem: str, data: bytes) -> Path:
        """Queue a result under a stable name, so queueing the same result twice (after a crash)
        overwrites rather than duplicates."""
        return write_durably(self.pending_dir / f"{stem}{self.suffix}", data)

    def pending(self) -> list[Path]:
        """Queued results, oldest first."""
        entries = []
        for path in self.pending_dir.glob(f"*{self.suffix}"):
            try:
                entries.append((path.stat().st_mtime_ns, path))
            except FileNotFoundError:  # delivered meanwhile
                continue
        return [path for _, path in sorted(entries)]

    def delivered(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._retry_file(path).unlink(missing_ok=True)

    def park(self, path: Path) -> Path:
        parked = move_durably(path, self.failed_dir)
        self._retry_file(path).unlink(missing_ok=True)
        return parked

    def save_backoff(self, path: Path, backoff: Backoff) -> None:
        """Keep a result's failed attempts on disk; the due time as wall-clock time, which outlives
        the process (monotonic time does not)."""
        record = {
            "attempts": backoff.attempts,
            "due_epoch": time.time() + max(0.0, backoff.due - time.monotonic()),
            "last_error": backoff.last_error,
        }
        write_durably(self._retry_file(path), json.dumps(record).encode())

    def load_backoff(self, path: Path) -> Backoff | None:
        """The back-off a previous run saved for this result; None if there is none (or it is
        unreadable, in which case the result is simply retried as new)."""
        try:
            record = json.loads(self._retry_file(path).read_text())
            attempts, due_epoch = int(record["attempts"]), float(record["due_epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        due = time.monotonic() + max(0.0, due_epoch - time.time())
        return Backoff(attempts, due, str(record.get("last_error", "")))

    def _retry_file(self, path: Path) -> Path:
        return self.pending_dir / f"{path.name}{RETRY_SUFFIX}"


class OutboxSender:
    """A thread that sends what is due in the outbox and schedules retries of what failed."""

    def __init__(
        self,
        outbox: FileOutbox,
        deliver: Deliver,
        retry: RetryPolicy,
        *,
        destination: object,
        name: str = "outbox-sender",
        on_delivered: Callable[[Path], None] | None = None,
        on_parked: Callable[[Path, str, int], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.deliver = deliver
        self.destination = destination  # shown in logs
        self.name = name
        self.retry = retry
        self.on_delivered = on_delivered
        self.on_parked = on_parked
        self._backoff: dict[str, Backoff] = {}  # per result the destination refused (mirrored on disk)
        self._link = Backoff()  # the destination as a whole (down, unreachable, rejecting us)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """New results are queued: look now rather than at the next poll."""
        self._wake.set()

    def send_due(self, now: float | None = None) -> list[Delivery]:
        """One round: send every due result (in batches); returns what was attempted."""
        now = time.monotonic() if now is None else now
        if self._link.due > now:
            return []
        pending = self.outbox.pending()
        names = {path.name for path in pending}
        for name in list(self._backoff):  # forget results delivered or removed elsewhere
            if name not in names:
                del self._backoff[name]
        for path in pending:  # results a previous run already tried
            if path.name not in self._backoff and (saved := self.outbox.load_backoff(path)) is not None:
                self._backoff[path.name] = saved
        due = [path for path in pending if self._backoff.get(path.name, Backoff()).due <= now]
        attempted: list[Delivery] = []
        for start in range(0, len(due), BATCH):
            if self._stop.is_set():
                break
            with ExitStack() as held:
                # Only results this process holds: another one sharing the outbox may be sending the rest.
                batch = [path for path in due[start : start + BATCH] if held.enter_context(claim(path))]
                if not batch:
                    continue
                deliveries = self.deliver(batch)
                attempted += deliveries
                for delivery in deliveries:  # settled (removed, parked) before the claim is let go
                    self._settle(delivery, time.monotonic())
            if any(d.link_failed for d in deliveries):
                self._link_failed(deliveries, time.monotonic())
                break  # the rest of the round would fail the same way
            self._link = Backoff()
        return attempted

    def next_due(self) -> float | None:
        """Monotonic time of the earliest scheduled retry, if anything is backing off."""
        times = [b.due for b in self._backoff.values()]
        if self._link.attempts:
            times.append(self._link.due)
        return min(times, default=None)

    def _link_failed(self, deliveries: list[Delivery], now: float) -> None:
        """The destination is down or unreachable: back off as a whole. Results are never parked for
        this, however long it lasts; they say nothing wrong about themselves."""
        self._link.attempts += 1
        self._link.last_error = next(d.error for d in deliveries if d.link_failed) or "link failed"
        delay = self.retry.delay(self._link.attempts)
        self._link.due = now + delay
        log.warning("destination %s: %s; attempt %d, retry in %.1f s",
                    self.destination, self._link.last_error, self._link.attempts, delay)  # fmt: skip

    def _settle(self, delivery: Delivery, now: float) -> None:
        name = delivery.path.name
        if delivery.ok:
            self._backoff.pop(name, None)
            log.info("result %s delivered to %s", name, self.destination)
            # Recorded before the file leaves the outbox: once it is gone, its delivery is on record
            # (a crash in between sends it again, which the destination takes as the same instance).
            if self.on_delivered is not None:
                self.on_delivered(delivery.path)
            self.outbox.delivered(delivery.path)
            return
        if delivery.link_failed:
            return  # handled for the destination as a whole
        if not delivery.path.exists():  # removed by hand meanwhile: nothing left to retry
            self._backoff.pop(name, None)
            return
        state = self._backoff.setdefault(name, Backoff())
        state.attempts += 1
        state.last_error = delivery.error or "unknown error"
        if self.retry.gives_up(state.attempts):
            self._backoff.pop(name, None)
            log.error("result %s parked after %d attempts: %s", name, state.attempts, state.last_error)
            if self.on_parked is not None:  # on record before it moves, as for a delivery
                self.on_parked(delivery.path, state.last_error, state.attempts)
            self.outbox.park(delivery.path)
            return
        delay = self.retry.delay(state.attempts)
        state.due = now + delay
        self.outbox.save_backoff(delivery.path, state)
        log.warning("result %s refused by %s (%s); attempt %d, retry in %.1f s",
                    name, self.destination, state.last_error, state.attempts, delay)  # fmt: skip

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.send_due()
            except Exception:  # a bug must not end the sender: results would silently pile up
                log.exception("%s failed a round; retrying", self.name)
            wait = POLL_SECONDS
            next_due = self.next_due()
            if next_due is not None:
                wait = min(wait, max(0.05, next_due - time.monotonic()))
            self._wake.wait(wait)
            self._wake.clear()
