"""A database written before the store moved out of service/ (commit 5f57089) opens unchanged.

``data/old-layout.sqlite3`` was made by that commit's code: ``cxr db upgrade``; ``cxr users create alice
--role clinician --password-stdin`` (password below); ``cxr users create bob --role auditor``; ``cxr keys
create dicom-node``; ``cxr users disable bob``; then two accepted predictions through its
``service.store.Store.record_prediction`` with CXR_STORE_IMAGES=true and the image key below (the first
one's image kept, encrypted). Same Alembic revision history, same audit chain: nothing may need rewriting.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cxr_pneumonia.cli import app as cli_app
from cxr_pneumonia.config import get_settings
from cxr_pneumonia.store import accounts, audit
from cxr_pneumonia.store.db.migrate import current_revision, head_revision
from cxr_pneumonia.store.db.models import PredictionRecord
from cxr_pneumonia.store.facade import Store

FIXTURE = Path(__file__).parent / "data" / "old-layout.sqlite3"
IMAGE_KEY = base64.b64encode(b"fixture-key-not-a-secret-0123456").decode()
ALICE_PASSWORD = "correct horse battery staple"
# What the old code's `cxr audit verify` printed: the new code must walk to the same head.
OLD_HEAD = "6 e7bc2b9058ed26c84ef69e4d9f81a5a8c80ef40ec709f40a80a029a2cdfed00c"


@pytest.fixture
def old_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(FIXTURE, data_dir / "cxr.sqlite3")  # the default database name under CXR_DATA_DIR
    for name in ("CXR_DATABASE_URL", "CXR_REDIS_URL", "CXR_IMAGE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CXR_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CXR_IMAGE_KEY", IMAGE_KEY)
    monkeypatch.setenv("CXR_STORE_IMAGES", "true")
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


def _cxr(*args: str) -> str:
    result = CliRunner().invoke(cli_app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cxr_db_upgrade_and_audit_verify_pass_on_the_old_database(old_data_dir: Path) -> None:
    assert f"database at revision {head_revision()}" in _cxr("db", "upgrade")  # migrated to the head
    verified = _cxr("audit", "verify")
    assert verified.startswith("intact: 6 events, 2 predictions checked") and OLD_HEAD in verified


def test_the_store_reads_and_extends_what_the_old_code_wrote(old_data_dir: Path) -> None:
    store = Store.from_settings(get_settings())
    try:
        assert current_revision(store.engine) == head_revision() is not None
        with store.reading() as session:
            alice = accounts.check_login(session, "alice", ALICE_PASSWORD)
            assert alice is not None and alice.role == "clinician"
            assert not accounts.get_user(session, "bob").active
            assert [key.name for key in accounts.list_keys(session)] == ["dicom-node"]
            rows = list(session.scalars(select(PredictionRecord).order_by(PredictionRecord.created_at)))
            assert len(rows) == 2 and rows[0].image_sha256 is not None
            assert store.read_image(session, rows[0].image_sha256).startswith(b"\x89PNG")
        store.audit("login", actor="user:alice", outcome="ok")  # the chain goes on from the old head
        with store.reading() as session:
            report = audit.verify(session)
        assert report.ok and report.events == 7 and report.predictions == 2
    finally:
        store.close()
