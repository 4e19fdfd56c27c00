"""The data directory is 0700 and every file in it 0600: the database, its -wal and -shm, the spool."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxr_pneumonia.config import Settings
from cxr_pneumonia.store.facade import Store


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """Start from the umask most shells have (022), whatever an earlier test left; restore it after."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _settings(data_dir: Path) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, database_url=None)  # type: ignore[call-arg]


def test_a_new_data_dir_and_the_database_files_are_private(tmp_path: Path, usual_umask: None) -> None:
    data_dir = tmp_path / "var"
    store = Store.from_settings(_settings(data_dir))
    try:
        store.audit("test", actor="tester", outcome="ok")  # a write: the -wal and -shm exist now
        modes = _modes(data_dir)
    finally:
        store.close()
    assert {"cxr.sqlite3", "cxr.sqlite3-wal", "cxr.sqlite3-shm"} <= set(modes), modes
    assert modes.pop(".") == 0o700
    assert all(mode == 0o600 for mode in modes.values()), modes


def test_an_old_world_readable_tree_is_tightened_at_start(tmp_path: Path, usual_umask: None) -> None:
    data_dir = tmp_path / "var"
    outbox = data_dir / "dicom" / "outbox" / "pending"
    outbox.mkdir(parents=True)
    (outbox / "result.dcm").write_bytes(b"an SR with a patient's name")
    (data_dir / "mlflow.sqlite3").write_bytes(b"")
    for path in (data_dir, *data_dir.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    Store.from_settings(_settings(data_dir)).close()
    modes = _modes(data_dir)
    assert all(mode == (0o700 if (data_dir / name).is_dir() else 0o600) for name, mode in modes.items()), (
        modes
    )
