"""Secrets generated on first use and kept in a 0600 file (JWT signing key, image key)."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def read_or_create(path: Path, generate: Callable[[], bytes], what: str) -> bytes:
    """The file's content, creating it if absent so that concurrent workers agree on one secret.

    The secret is written whole to a private temporary file and then hard-linked into place: the link
    fails if another worker got there first, and a reader never sees a half-written file.
    """
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = generate()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(value + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:  # another worker won the race: use its secret
            return path.read_bytes().strip()
    finally:
        temporary.unlink(missing_ok=True)
    log.warning("generated a new %s in %s (mode 0600); back it up with the database", what, path)
    return value
