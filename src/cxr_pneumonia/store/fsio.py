"""Durable file writes for the on-disk queues (the DICOM node's spool, the result outboxes)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

PARTIAL_SUFFIX = ".part"


def write_durably(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that after a crash the file is either whole or absent.

    The node answers a C-STORE with Success only after this returns, so a crash after the
    acknowledgement must not lose the instance: write a temporary file, fsync it, rename it into
    place (atomic on POSIX) and fsync the directory so the rename itself survives a power cut.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)
    return path


def sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_durably(source: Path, target_dir: Path) -> Path:
    """Move a queue file into another queue directory (same file system), durably."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source.name
    os.replace(source, target)
    sync_directory(target_dir)
    sync_directory(source.parent)
    return target


def remove_stale_partials(directory: Path) -> int:
    """Delete temporary files a crash left behind (their content was never acknowledged)."""
    removed = 0
    if directory.is_dir():
        for stale in directory.glob(f".*{PARTIAL_SUFFIX}"):
            stale.unlink(missing_ok=True)
            removed += 1
    return removed
