"""Users and API keys: create, list, disable, revoke, authenticate. Callers own the transaction.

Password hashing is slow on purpose (argon2), so it runs before a function's first query: on SQLite a
write transaction takes the database's write lock at its first statement, and must not hold it while
hashing.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .db.base import utcnow
from .db.models import ApiKey, User
from .errors import AccountError, Conflict, NotFound
from .security import apikeys, passwords
from .security.principal import Principal
from .security.roles import Role

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.@:-]{0,63}$"
_USERNAME = re.compile(USERNAME_PATTERN)


def valid_username(username: str) -> bool:
    return bool(_USERNAME.match(username))


def create_user(session: Session, username: str, role: Role, password: str, *, created_by: str) -> User:
    if not valid_username(username):
        raise AccountError("a username is 1-64 letters, digits or _.@- and starts with a letter or digit")
    if not passwords.MIN_LENGTH <= len(password) <= passwords.MAX_LENGTH:
        raise AccountError(
            f"a password has {passwords.MIN_LENGTH} to {passwords.MAX_LENGTH} characters",
            code="weak_password",
        )
    password_hash = passwords.hash_password(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} exists")
    user = User(
        username=username,
        role=role.value,
        password_hash=password_hash,
        active=True,
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(user)
    session.flush()
    return user


def user_exists(session: Session, username: str) -> bool:
    return (
        valid_username(username)
        and session.scalar(select(User.id).where(User.username == username)) is not None
    )


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username)) if valid_username(username) else None
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def set_active(session: Session, username: str, active: bool) -> User:
    user = get_user(session, username)
    if not active and user.active and user.role == Role.ADMIN and _active_admins(session) <= 1:
        raise Conflict("this is the last active admin; create another admin first", code="last_admin")
    user.active = active
    user.disabled_at = None if active else utcnow()
    session.flush()
    return user


def _active_admins(session: Session) -> int:
    query = select(func.count()).select_from(User).where(User.role == Role.ADMIN.value, User.active)
    return int(session.scalar(query) or 0)


def set_password(session: Session, user_id: int, password: str) -> None:
    if not passwords.MIN_LENGTH <= len(password) <= passwords.MAX_LENGTH:
        raise AccountError(
            f"a password has {passwords.MIN_LENGTH} to {passwords.MAX_LENGTH} characters",
            code="weak_password",
        )
    password_hash = passwords.hash_password(password)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("the user no longer exists")
    user.password_hash = password_hash
    session.flush()


def check_login(session: Session, username: str, password: str) -> User | None:
    """The active user with this password, else None (the same work whether or not the user exists).
    Reads only: use a read session, then record the outcome in a write transaction."""
    user = session.scalar(select(User).where(User.username == username)) if valid_username(username) else None
    if not passwords.verify_password(user.password_hash if user else None, password):
        return None
    if user is None or not user.active:
        return None
    return user


def user_principal(session: Session, user_id: int, username: str) -> Principal | None:
    """The principal of a token's user if that user still exists and is active (disabling is immediate)."""
    user = session.get(User, user_id)
    if user is None or not user.active or user.username != username:
        return None
    return Principal("user", str(user.id), user.username, Role(user.role))


def create_key(session: Session, name: str, role: Role, *, created_by: str) -> tuple[ApiKey, str]:
    """The new key's row and its token (shown once)."""
    if not re.match(KEY_NAME_PATTERN, name):
        raise AccountError(
            "a key name is 1-64 letters, digits, spaces or _.@:- and starts with a letter or digit"
        )
    new = apikeys.generate()
    row = ApiKey(
        id=new.key_id,
        name=name,
        role=role.value,
        secret_sha256=new.secret_sha256,
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row, new.token


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_key(session: Session, key_id: str, *, revoked_by: str) -> ApiKey:
    row = session.get(ApiKey, key_id) if re.match(r"^[0-9a-f]{12}$", key_id) else None
    if row is None:
        raise NotFound(f"no API key {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        row.revoked_by = revoked_by
        session.flush()
    return row


def key_principal(session: Session, token: str) -> Principal | None:
    parsed = apikeys.parse(token)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None or not apikeys.matches(secret, row.secret_sha256):
        return None
    return Principal("key", row.id, row.name, Role(row.role))
