"""`cxr users`, `cxr keys`, `cxr db upgrade` (in process, on a temporary data directory)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select
from typer.testing import CliRunner

from cxr_pneumonia.cli import app as cli_app
from cxr_pneumonia.config import get_settings
from cxr_pneumonia.store.db.migrate import alembic_config
from cxr_pneumonia.store.db.models import AuditEvent

from .conftest import API, Service


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    for name in ("CXR_DATABASE_URL", "CXR_REDIS_URL", "CXR_STORE_IMAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CXR_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _ok(runner: CliRunner, *args: str, stdin: str | None = None) -> str:
    result = runner.invoke(cli_app, list(args), input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_db_upgrade(cli: CliRunner) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"database at revision {head}" in _ok(cli, "db", "upgrade")
    assert f"database at revision {head}" in _ok(cli, "db", "upgrade")


def test_the_migrations_have_one_head() -> None:
    """Branches merged side by side must re-chain their migrations (`alembic heads` stays one)."""
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


def test_users_and_keys_from_the_command_line(cli: CliRunner, make_service, tmp_path: Path) -> None:
    out = _ok(cli, "users", "create", "dr.cli", "--role", "clinician")
    password = re.search(r"password \(shown once\): (\S+)", out)
    assert password
    _ok(cli, "users", "create", "aud", "--role", "auditor", "--password-stdin", stdin="a chosen password\n")
    listing = _ok(cli, "users", "list")
    assert "dr.cli" in listing and "auditor" in listing
    assert cli.invoke(cli_app, ["users", "create", "dr.cli"]).exit_code == 2  # exists
    assert cli.invoke(cli_app, ["users", "create", "x", "--role", "boss"]).exit_code == 2

    key_out = _ok(cli, "keys", "create", "pacs-router", "--role", "integration")
    token = re.search(r"api key \(shown once\): (cxr_(\w{12})_\S+)", key_out)
    assert token
    assert token.group(2) in _ok(cli, "keys", "list") and token.group(1) not in _ok(cli, "keys", "list")

    # The same data directory served by an app: the CLI's accounts work there.
    service: Service = make_service(data_dir=tmp_path / "data")
    login = service.client.post(
        f"{API}/auth/token", data={"username": "dr.cli", "password": password.group(1)}
    )
    assert login.status_code == 200
    assert (
        service.client.get(f"{API}/auth/me", headers={"X-API-Key": token.group(1)}).json()["role"]
        == "integration"
    )

    _ok(cli, "users", "disable", "dr.cli")
    _ok(cli, "keys", "revoke", token.group(2))
    assert (
        service.client.post(
            f"{API}/auth/token", data={"username": "dr.cli", "password": password.group(1)}
        ).status_code
        == 401
    )
    assert service.client.get(f"{API}/auth/me", headers={"X-API-Key": token.group(1)}).status_code == 401
    _ok(cli, "users", "enable", "dr.cli")
    assert cli.invoke(cli_app, ["keys", "revoke", "nonexistent1"]).exit_code == 2

    with service.store.reading() as session:
        actions = [(e.actor, e.action) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    cli_actions = [a for actor, a in actions if actor.startswith("cli:")]
    assert cli_actions == [
        "create_user",
        "create_user",
        "create_key",
        "disable_user",
        "revoke_key",
        "enable_user",
    ]
    assert "intact:" in _ok(cli, "audit", "verify")
