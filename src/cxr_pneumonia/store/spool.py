"""The work queue of received DICOM instances (C-STORE to the DICOM node, STOW-RS to the service):
written before the store is acknowledged, removed after the instance has been analysed (by the DICOM
node), so an instance acknowledged before a crash is analysed on restart. Several nodes may share one
spool: each instance is analysed by the one that claims it (:func:`.fsio.claim`)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from .fsio import move_durably, remove_stale_partials, write_durably


class Spool:
    """``incoming/`` (waiting), ``kept/`` (processed, kept on request), ``failed/`` (processing crashed).

    File names are a receive timestamp and a random id, never a UID or anything from the header:
    they appear in logs, and sort in arrival order.
    """

    def __init__(self, root: Path, *, clean: bool = True) -> None:
        """``clean``: delete partial files a crash left (the nodes, which own the spool, do; a partial
        being written is locked, so no node removes another writer's file)."""
        self.root = root
        self.incoming = root / "incoming"
        self.kept = root / "kept"
        self.failed = root / "failed"
        self.incoming.mkdir(parents=True, exist_ok=True)
        if clean:
            remove_stale_partials(self.incoming)

    def put(self, part10: bytes) -> Path:
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.dcm"
        return write_durably(self.incoming / name, part10)

    def pending(self) -> list[Path]:
        """Waiting instances, oldest first."""
        return sorted(self.incoming.glob("*.dcm"))

    def finish(self, path: Path, *, keep: bool) -> None:
        if keep:
            move_durably(path, self.kept)
        else:
            path.unlink(missing_ok=True)

    def park(self, path: Path) -> Path:
        """Set aside an instance whose processing raised an unexpected error, rather than loop on it."""
        return move_durably(path, self.failed)

    @staticmethod
    def job_id(path: Path) -> str:
        return path.stem
