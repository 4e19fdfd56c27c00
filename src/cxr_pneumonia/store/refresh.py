"""Refresh tokens that rotate: each is good once and is replaced by the next of its family; a used
one presented again means someone else holds a copy, so the whole family is revoked. Signing out
revokes the family too, and the access tokens it issued (they name their family) stop at once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .db.base import utcnow
from .db.models import RefreshToken

PREFIX = "cxr_rt"


@dataclass(frozen=True)
class Refreshed:
    user_id: int
    family: str
    token: str  # the next refresh token


@dataclass(frozen=True)
class Refused:
    reason: str  # invalid | expired | reused | revoked
    user_id: int | None = None
    family: str | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(session: Session, user_id: int, lifetime: timedelta, family: str | None = None) -> Refreshed:
    token_id, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
    family = family or secrets.token_hex(16)
    now = utcnow()
    session.add(
        RefreshToken(
            id=token_id,
            family=family,
            user_id=user_id,
            secret_sha256=_hash(secret),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.flush()
    return Refreshed(user_id, family, f"{PREFIX}_{token_id}_{secret}")


def _find(session: Session, token: str) -> RefreshToken | None:
    prefix, _, rest = token.partition("_rt_")
    token_id, _, secret = rest.partition("_")
    if prefix != "cxr" or len(token_id) != 32 or not secret:
        return None
    row = session.get(RefreshToken, token_id)
    if row is None or not hmac.compare_digest(row.secret_sha256, _hash(secret)):
        return None
    return row


def revoke_family(session: Session, family: str) -> None:
    now = utcnow()
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def rotate(session: Session, token: str, lifetime: timedelta) -> Refreshed | Refused:
    row = _find(session, token)
    if row is None:
        return Refused("invalid")
    if row.revoked_at is not None:
        return Refused("revoked", row.user_id, row.family)
    if row.expires_at <= utcnow():
        return Refused("expired", row.user_id, row.family)
    # Compare-and-set, so that of two requests with the same token only one rotates it.
    used = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        revoke_family(session, row.family)
        return Refused("reused", row.user_id, row.family)
    return issue(session, row.user_id, lifetime, family=row.family)


def sign_out(session: Session, token: str) -> str | None:
    """Revoke the family of ``token``; its family id, or None if the token is not ours."""
    row = _find(session, token)
    if row is None:
        return None
    revoke_family(session, row.family)
    return row.family


def family_revoked(session: Session, family: str) -> bool:
    query = select(RefreshToken.id).where(RefreshToken.family == family, RefreshToken.revoked_at.is_not(None))
    return session.scalars(query.limit(1)).first() is not None
