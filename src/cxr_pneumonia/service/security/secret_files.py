"""Secrets generated on first use and kept in a 0600 file (JWT signing key, image key)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def read_or_create(path: Path, generate: Callable[[], bytes], what: str) -> bytes:
    """The file's content, creating it atomically (O_EXCL) if absent, so concurrent workers agree."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race: use its secret
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value + b"\n")
    log.warning("generated a new %s in %s (mode 0600); back it up with the database", what, path)
    return value
