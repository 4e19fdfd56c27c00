"""`cxr users`, `cxr keys`, `cxr audit`, `cxr db`: thin doors onto the store, no HTTP involved.

Imported by cli.py at start-up, so only typer is imported here; everything else inside the commands.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .facade import Store

ROLES = ("admin", "clinician", "auditor", "integration")


def cli_actor() -> str:
    """How the audit trail names the person at this terminal."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _store() -> Store:
    from ..config import get_settings
    from .facade import Store

    return Store.from_settings(get_settings())


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise typer.BadParameter(f"choose one of {', '.join(ROLES)}")
    return role


# ---- users ----------------------------------------------------------------------------------------
users_app = typer.Typer(help="User accounts (argon2-hashed passwords).", no_args_is_help=True)


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[str, typer.Option(help="admin | clinician | auditor | integration")] = "clinician",
    password_stdin: Annotated[
        bool, typer.Option(help="read the password from stdin instead of generating one")
    ] = False,
) -> None:
    """Create a user. Without --password-stdin a random password is generated and printed once."""
    from ..errors import CXRError
    from . import accounts
    from . import audit as audit_chain
    from .security.passwords import generate_password
    from .security.roles import Role

    password = sys.stdin.readline().rstrip("\n") if password_stdin else generate_password()
    store = _store()
    try:
        with store.transaction() as session:
            user = accounts.create_user(
                session, username, Role(_check_role(role)), password, created_by=cli_actor()
            )
            audit_chain.append(
                session,
                action="create_user",
                actor=cli_actor(),
                outcome="ok",
                detail={"username": user.username, "role": user.role},
            )
    except CXRError as exc:
        raise fail(exc.detail) from None
    finally:
        store.close()
    typer.echo(f"created {role} {username!r}")
    if not password_stdin:
        typer.echo(f"password (shown once): {password}")


@users_app.command("list")
def users_list() -> None:
    """List users."""
    from . import accounts

    store = _store()
    with store.reading() as session:
        for user in accounts.list_users(session):
            state = "active" if user.active else "disabled"
            typer.echo(
                f"{user.id:>4}  {user.username:<24} {user.role:<12} {state:<9} created {user.created_at:%Y-%m-%d}"
            )
    store.close()


def _audited(action: str, detail: dict[str, Any], change: Callable[[Store, Session], Any]) -> Any:
    """Run ``change`` and its audit event in one transaction; a refusal is a clean exit 2."""
    from ..errors import CXRError
    from . import audit as audit_chain

    store = _store()
    try:
        with store.transaction() as session:
            result = change(store, session)
            audit_chain.append(session, action=action, actor=cli_actor(), outcome="ok", detail=detail)
            return result
    except CXRError as exc:
        raise fail(exc.detail) from None
    finally:
        store.close()


def _set_active(username: str, active: bool) -> None:
    from . import accounts

    _audited(
        "enable_user" if active else "disable_user",
        {"username": username},
        lambda _store, session: accounts.set_active(session, username, active),
    )
    typer.echo(f"{'enabled' if active else 'disabled'} {username!r}")


@users_app.command("reset-mfa")
def users_reset_mfa(username: Annotated[str, typer.Argument()]) -> None:
    """Forget a user's second factor and recovery codes (a lost phone): they enrol again."""
    from . import accounts, mfa

    _audited(
        "reset_mfa",
        {"username": username},
        lambda _store, session: mfa.reset(session, accounts.get_user(session, username).id),
    )
    typer.echo(f"second factor of {username!r} reset: they enrol again at their next sign-in")


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument()]) -> None:
    """Disable a user: their tokens stop working at once."""
    _set_active(username, False)


@users_app.command("enable")
def users_enable(username: Annotated[str, typer.Argument()]) -> None:
    """Enable a disabled user again."""
    _set_active(username, True)


# ---- API keys -------------------------------------------------------------------------------------
keys_app = typer.Typer(help="API keys for integrations (only their hashes are stored).", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="what the key is for, e.g. 'dicom-node'")],
    role: Annotated[str, typer.Option(help="admin | clinician | auditor | integration")] = "integration",
) -> None:
    """Create an API key and print it once."""
    from ..errors import CXRError
    from . import accounts
    from . import audit as audit_chain
    from .security.roles import Role

    store = _store()
    try:
        with store.transaction() as session:
            row, token = accounts.create_key(session, name, Role(_check_role(role)), created_by=cli_actor())
            audit_chain.append(
                session,
                action="create_key",
                actor=cli_actor(),
                outcome="ok",
                detail={"key_id": row.id, "name": row.name, "role": row.role},
            )
            key_id = row.id
    except CXRError as exc:
        raise fail(exc.detail) from None
    finally:
        store.close()
    typer.echo(f"created {role} key {key_id} ({name})")
    typer.echo(f"api key (shown once): {token}")


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their secrets)."""
    from . import accounts

    store = _store()
    with store.reading() as session:
        for key in accounts.list_keys(session):
            state = "active" if key.revoked_at is None else f"revoked {key.revoked_at:%Y-%m-%d}"
            typer.echo(f"{key.id}  {key.name:<24} {key.role:<12} {state}")
    store.close()


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key id (second part of cxr_<id>_...)")],
) -> None:
    """Revoke an API key."""
    from ..errors import CXRError
    from . import accounts
    from . import audit as audit_chain

    store = _store()
    try:
        with store.transaction() as session:
            accounts.revoke_key(session, key_id, revoked_by=cli_actor())
            audit_chain.append(
                session, action="revoke_key", actor=cli_actor(), outcome="ok", detail={"key_id": key_id}
            )
    except CXRError as exc:
        raise fail(exc.detail) from None
    finally:
        store.close()
    typer.echo(f"revoked {key_id}")


# ---- audit and database ---------------------------------------------------------------------------
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Walk the audit chain; name the first event altered, removed or inserted. Exit 1 if broken."""
    from . import audit as audit_chain

    store = _store()
    with store.reading() as session:
        report = audit_chain.verify(session)
    store.close()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    elif report.ok:
        typer.echo(
            f"intact: {report.events} events, {report.predictions} predictions checked; "
            f"head {report.head_seq} {report.head_hash}"
        )
    else:
        typer.echo(f"BROKEN ({report.problem}): {report.detail}")
    if not report.ok:
        raise typer.Exit(1)


db_app = typer.Typer(help="The service database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations (also done by `cxr serve` at start)."""
    from ..config import get_settings
    from .db.engine import make_engine
    from .db.migrate import current_revision, upgrade
    from .private import make_private

    settings = get_settings()
    make_private(settings.data_dir)
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    typer.echo(
        f"database at revision {current_revision(engine)} ({engine.url.render_as_string(hide_password=True)})"
    )
    engine.dispose()


@db_app.command("backup")
def db_backup(out: Annotated[Path, typer.Argument(help="the backup file to write (must not exist)")]) -> None:
    """Copy the database while the service runs (SQLite backup API, or pg_dump) and verify the audit
    chain on the copy. The image key and JWT keys are not included: keep them in your secrets store."""
    from ..config import get_settings
    from ..errors import CXRError
    from .backup import backup

    try:
        report = backup(get_settings().resolved_database_url, out)
    except CXRError as exc:
        raise fail(exc.detail) from None
    typer.echo(f"backup written to {report.path}; audit chain intact: {report.chain.events} events")


@db_app.command("restore")
def db_restore(
    backup_file: Annotated[Path, typer.Argument(help="a file written by `cxr db backup`")],
    replace: Annotated[
        bool, typer.Option(help="overwrite an existing database (stop the service first)")
    ] = False,
) -> None:
    """Restore a backup into the configured database, refusing one whose audit chain is broken."""
    from ..config import get_settings
    from ..errors import CXRError
    from .backup import restore

    try:
        report = restore(get_settings().resolved_database_url, backup_file, replace=replace)
    except CXRError as exc:
        raise fail(exc.detail) from None
    typer.echo(f"restored {report.path}; audit chain intact: {report.chain.events} events")


secrets_app = typer.Typer(help="The service's own secrets (JWT signing keys).", no_args_is_help=True)


@secrets_app.command("rotate-jwt")
def secrets_rotate_jwt() -> None:
    """Introduce a new JWT signing key; the old one verifies until the tokens it signed expire."""
    from datetime import timedelta

    from ..config import get_settings
    from .jwt_keys import CACHE_SECONDS, keyring_for, refuse_static, rotate

    grace = timedelta(minutes=get_settings().token_minutes, seconds=2 * CACHE_SECONDS)

    def change(store: Store, session: Session) -> str:
        refuse_static(keyring_for(store))
        return rotate(session, store.cipher, grace)

    kid = _audited("rotate_jwt_key", {}, change)
    typer.echo(f"new JWT signing key {kid}; the previous ones verify for {int(grace.total_seconds())} s more")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")
    app.add_typer(db_app, name="db")
    app.add_typer(secrets_app, name="secrets")
