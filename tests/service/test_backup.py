"""`cxr db backup` and `cxr db restore`: a copy of a database in use restores into a fresh data
directory, and `cxr audit verify` passes there; a tampered backup is refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxr_pneumonia.cli import app as cli_app
from cxr_pneumonia.config import get_settings

from .conftest import Service


def _cxr(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, *args: str, database_url: str = ""
) -> tuple[int, str]:
    """Run the CLI on ``data_dir``'s SQLite database, or on ``database_url``."""
    for name in ("CXR_DATABASE_URL", "CXR_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    if database_url:
        monkeypatch.setenv("CXR_DATABASE_URL", database_url)
    monkeypatch.setenv("CXR_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, list(args))
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output


@pytest.fixture
def service(make_service: Callable[..., Service], tmp_path: Path) -> Service:
    return make_service(data_dir=tmp_path / "live")


def test_backup_and_restore_round_trip(
    service: Service, chest_jpeg: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [service.predict(chest_jpeg).json()["id"] for _ in range(2)]
    out = tmp_path / "backups" / "cxr.backup"
    code, output = _cxr(monkeypatch, tmp_path / "live", "db", "backup", str(out))  # service still open
    assert code == 0 and "audit chain intact" in output, output
    service.predict(chest_jpeg)  # after the backup: not in it

    fresh = tmp_path / "fresh"
    code, output = _cxr(monkeypatch, fresh, "db", "restore", str(out))
    assert code == 0, output
    code, output = _cxr(monkeypatch, fresh, "audit", "verify")
    assert code == 0 and output.startswith("intact:") and "2 predictions" in output, output
    with sqlite3.connect(fresh / "cxr.sqlite3") as db:
        assert sorted(row[0] for row in db.execute("SELECT id FROM predictions")) == sorted(ids)

    code, output = _cxr(monkeypatch, fresh, "db", "restore", str(out))  # never over a database by accident
    assert code == 2 and "--replace" in output
    assert _cxr(monkeypatch, fresh, "db", "backup", str(out))[0] == 2  # nor over an existing backup


def test_a_tampered_backup_is_not_restored(
    service: Service, chest_jpeg: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert service.predict(chest_jpeg).status_code == 200
    out = tmp_path / "cxr.backup"
    assert _cxr(monkeypatch, tmp_path / "live", "db", "backup", str(out))[0] == 0
    db = sqlite3.connect(out)
    with db:
        db.execute("UPDATE predictions SET label = 'normal', p_pneumonia = 0.01")
    db.close()
    code, output = _cxr(monkeypatch, tmp_path / "fresh", "db", "restore", str(out))
    assert code == 2 and "audit chain of the backup is broken" in output, output
    assert not (tmp_path / "fresh" / "cxr.sqlite3").exists()


def test_postgresql_backup_restores_into_another_database(
    make_service: Callable[..., Service],
    postgres_url: str,
    chest_jpeg: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pg_dump of a database in use, pg_restore into a fresh one, and the audit chain verifies there."""
    from sqlalchemy import create_engine, text

    from .conftest import fresh_postgres_database

    live = make_service(data_dir=tmp_path / "live", database_url=postgres_url)
    ids = [live.predict(chest_jpeg).json()["id"] for _ in range(2)]
    out = tmp_path / "backups" / "cxr.pgdump"
    code, output = _cxr(monkeypatch, tmp_path / "live", "db", "backup", str(out), database_url=postgres_url)
    assert code == 0 and "audit chain intact" in output, output
    assert out.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    live.predict(chest_jpeg)  # after the backup: not in it

    with fresh_postgres_database() as target:
        code, output = _cxr(monkeypatch, tmp_path / "fresh", "db", "restore", str(out), database_url=target)
        assert code == 0, output
        code, output = _cxr(monkeypatch, tmp_path / "fresh", "audit", "verify", database_url=target)
        assert code == 0 and output.startswith("intact:") and "2 predictions" in output, output
        engine = create_engine(target)
        with engine.connect() as connection:
            restored = sorted(row[0] for row in connection.execute(text("SELECT id FROM predictions")))
        engine.dispose()
        assert restored == sorted(ids)

    # A database whose chain is broken is not backed up (the copy would carry the break).
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE predictions SET label = 'normal', p_pneumonia = 0.01"))
    engine.dispose()
    code, output = _cxr(
        monkeypatch, tmp_path / "live", "db", "backup", str(tmp_path / "b2"), database_url=postgres_url
    )
    assert code == 2 and "audit chain of the database is broken" in output, output
    assert not (tmp_path / "b2").exists()
