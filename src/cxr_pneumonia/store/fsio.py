"""Durable file writes for the on-disk queues (the DICOM node's spool, the result outboxes), and the
claim that lets several processes share them.

Several nodes may share one spool and outbox directory (replicas on one volume). A queue file is
handled only while its handler holds an exclusive ``flock`` on it (:func:`claim`): the kernel releases
the lock when the holder dies, so a crashed node's work is taken up by another, and nothing is handled
by two at once. Partial writes are locked the same way, so one process's start-up clean-up never
removes another's file being written.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # a partial being written is not stale
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
    """Delete temporary files a crash left behind (their content was never acknowledged); not those
    another node sharing the directory is writing now (it holds their lock)."""
    removed = 0
    if directory.is_dir():
        for partial in directory.glob(f".*{PARTIAL_SUFFIX}"):
            with claim(partial) as stale:
                if stale:
                    partial.unlink(missing_ok=True)
                    removed += 1
    return removed


@contextmanager
def claim(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on a queue file while handling it. Yields False when another process
    holds it, or the file is gone or replaced (handled meanwhile); then the caller leaves it alone.

    The lock is taken without waiting, and checked to still be on the file at ``path`` (same inode):
    a holder removes or moves the file before it lets go, so whoever gets the lock later sees that.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            current = os.stat(path)
        except (BlockingIOError, FileNotFoundError):
            yield False
            return
        yield os.path.samestat(os.fstat(fd), current)
    finally:
        os.close(fd)  # releases the lock
