"""The data directory is private: 0700, and every file in it 0600.

It holds password and key hashes, prediction records, encrypted images and DICOM instances with
patient headers. A umask of 077 makes everything this process creates private (SQLite gives its
-wal and -shm files the mode of the database file), and existing trees from older versions are
tightened once at start.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_private(directory: Path) -> Path:
    """Create ``directory`` (0700) if needed, restrict what is already in it, and set umask 077."""
    os.umask(0o077)
    directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    _restrict(directory, PRIVATE_DIR)
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            _restrict(Path(root, name), PRIVATE_DIR)
        for name in files:
            _restrict(Path(root, name), PRIVATE_FILE)
    return directory


def _restrict(path: Path, mode: int) -> None:
    try:
        info = path.lstat()
        if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) & ~mode:
            path.chmod(stat.S_IMODE(info.st_mode) & mode)
    except FileNotFoundError:  # removed meanwhile (a SQLite -shm, a sent outbox entry)
        pass
