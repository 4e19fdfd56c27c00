"""`cxr db backup` and `cxr db restore`: a consistent copy of the database, its audit chain checked.

SQLite: the online backup API copies a consistent snapshot while the service keeps writing, into a
temporary file that becomes the backup only once the audit chain verifies on it. PostgreSQL: pg_dump
(custom format) and pg_restore; the chain is verified on the live database before the dump and on
the restored one after. The secret files (image key, JWT keys) are not in the backup: a backup that
carried them would open the encrypted images to whoever reads it; keep them in the secrets store.
"""

from __future__ import annotations

import os
import shutil
import sqlite3

# bandit B404/B603 accepted: pg_dump and pg_restore with fixed arguments, never a shell.
import subprocess  # nosec B404
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from ..errors import CXRError
from . import audit as audit_chain
from .db.engine import make_engine, normalise_url


class BackupError(CXRError):
    code = "backup_failed"
    http_status = 500


@dataclass(frozen=True)
class BackupReport:
    path: Path
    chain: audit_chain.ChainReport


def verify_chain(url: str) -> audit_chain.ChainReport:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return audit_chain.verify(session)
    finally:
        engine.dispose()


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _sqlite_copy(source: Path, target: Path) -> None:
    """A consistent snapshot of ``source`` (other connections may be writing, its WAL included) into
    ``target``, as one self-contained file (no WAL of its own)."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _checked(report: audit_chain.ChainReport, where: str) -> audit_chain.ChainReport:
    if not report.ok:
        raise BackupError(f"the audit chain of {where} is broken ({report.problem}): {report.detail}")
    return report


def backup(database_url: str, out: Path) -> BackupReport:
    url = normalise_url(database_url)
    if out.exists():
        raise BackupError(f"{out} exists already; choose a new file")
    out.parent.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "postgresql":
        report = _checked(verify_chain(database_url), "the database")
        _pg("pg_dump", url, "--format=custom", "--no-owner", f"--file={out}")
        return BackupReport(out, report)
    source = _sqlite_path(url)
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        _sqlite_copy(source, partial)
        report = _checked(verify_chain(f"sqlite:///{partial.resolve()}"), "the copy")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return BackupReport(out, report)


def restore(database_url: str, backup_file: Path, *, replace: bool = False) -> BackupReport:
    url = normalise_url(database_url)
    if not backup_file.is_file():
        raise BackupError(f"there is no backup at {backup_file}")
    if url.get_backend_name() == "postgresql":
        _pg(
            "pg_restore",
            url,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            str(backup_file),
        )
        return BackupReport(backup_file, _checked(verify_chain(database_url), "the restored database"))
    target = _sqlite_path(url)
    if target.exists() and not replace:
        raise BackupError(f"a database exists at {target}; stop the service and pass --replace")
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.restoring")
    staged.unlink(missing_ok=True)
    try:
        _sqlite_copy(backup_file, staged)
        report = _checked(verify_chain(f"sqlite:///{staged.resolve()}"), "the backup")
        for suffix in ("-wal", "-shm"):  # the old database's journal must not be replayed onto it
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    return BackupReport(backup_file, report)


def _pg(tool: str, url: URL, *args: str) -> None:
    """Run a PostgreSQL client tool; the password goes through the environment, not the command line."""
    if shutil.which(tool) is None:
        raise BackupError(f"{tool} is not installed (Debian: postgresql-client)")
    env = {**os.environ, "PGPASSWORD": url.password or ""} if url.password else dict(os.environ)
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    done = subprocess.run(  # nosec B603
        [tool, f"--dbname={dsn}", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BackupError(f"{tool} failed: {done.stderr.strip()[-500:]}")
