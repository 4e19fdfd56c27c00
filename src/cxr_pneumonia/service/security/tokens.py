"""Short-lived access tokens (JWT, HS256) for interactive users."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from ...config import Settings
from ...store.db.base import utcnow
from ...store.security.secret_files import read_or_create

ISSUER = "cxr-pneumonia"
ALGORITHM = "HS256"
MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    username: str


def signing_key(settings: Settings) -> bytes:
    """CXR_JWT_SECRET, else a random key kept in the data directory (never a constant)."""
    if settings.jwt_secret:
        return settings.jwt_secret.encode()
    return read_or_create(
        settings.data_dir / "jwt.secret", lambda: secrets.token_urlsafe(48).encode(), "JWT signing key"
    )


class TokenIssuer:
    def __init__(self, key: bytes, minutes: int) -> None:
        if len(key) < 32:
            raise ValueError("the JWT signing key must have at least 32 bytes")
        self._key = key
        self.lifetime = timedelta(minutes=minutes)

    def issue(self, user_id: int, username: str) -> str:
        now = utcnow()
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "name": username,
            "iss": ISSUER,
            "typ": "access",
            "iat": now,
            "exp": now + self.lifetime,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> TokenClaims | None:
        """The claims of a valid, unexpired token of ours; None for anything else."""
        if len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
            if claims.get("typ") != "access":
                return None
            return TokenClaims(user_id=int(claims["sub"]), username=str(claims.get("name", "")))
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError):
            return None
