"""Secrets created on first use: one secret however many workers start at once, never a partial file."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from cxr_pneumonia.store.security.secret_files import read_or_create


def test_concurrent_first_use_agrees_on_one_whole_secret(tmp_path: Path) -> None:
    path = tmp_path / "data" / "jwt.secret"
    workers = 16
    start = threading.Barrier(workers)
    results: list[bytes] = []

    def worker() -> None:
        start.wait()
        results.append(read_or_create(path, lambda: os.urandom(24).hex().encode(), "test secret"))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == workers and len(set(results)) == 1
    assert len(results[0]) == 48  # whole: nobody read the file before it was written
    assert path.read_bytes().strip() == results[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["jwt.secret"]  # no temporary files left


def test_an_existing_secret_is_read_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"kept\n")
    assert read_or_create(path, lambda: b"new", "test secret") == b"kept"
