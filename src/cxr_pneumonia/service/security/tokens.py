"""Short-lived access tokens (JWT, HS256, ``kid`` in the header) for interactive users.

The keys are the store's (store/jwt_keys.py): every replica signs with the newest and verifies with
any that has not retired. A token may carry a restriction (``rst``: a one-time password that must be
changed, a second factor that must be enrolled) and the refresh family (``fam``) it came from, so
that signing out stops it at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import jwt

from ...store.db.base import utcnow
from ...store.jwt_keys import SigningKey

ISSUER = "cxr-pneumonia"
ALGORITHM = "HS256"
MAX_TOKEN_CHARS = 4096


class Keyring(Protocol):
    def signing(self) -> SigningKey: ...

    def verifying(self, kid: str) -> bytes | None: ...


class FixedKeyring:
    """One key (tests, and CXR_JWT_SECRET)."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key

    def signing(self) -> SigningKey:
        return self._key

    def verifying(self, kid: str) -> bytes | None:
        return self._key.secret if kid == self._key.kid else None


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    username: str
    restriction: str | None = None
    family: str | None = None


class TokenIssuer:
    def __init__(self, keyring: Keyring, minutes: int) -> None:
        self.keyring = keyring
        self.lifetime = timedelta(minutes=minutes)

    def issue(
        self, user_id: int, username: str, *, restriction: str | None = None, family: str | None = None
    ) -> str:
        key = self.keyring.signing()
        if len(key.secret) < 32:
            raise ValueError("the JWT signing key must have at least 32 bytes")
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
        if restriction:
            claims["rst"] = restriction
        if family:
            claims["fam"] = family
        return jwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})

    def verify(self, token: str) -> TokenClaims | None:
        """The claims of a valid, unexpired token signed by one of our live keys; None for anything else."""
        if len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            secret = self.keyring.verifying(kid) if isinstance(kid, str) else None
            if secret is None:
                return None
            claims = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
            if claims.get("typ") != "access":
                return None
            return TokenClaims(
                user_id=int(claims["sub"]),
                username=str(claims.get("name", "")),
                restriction=claims.get("rst") if isinstance(claims.get("rst"), str) else None,
                family=claims.get("fam") if isinstance(claims.get("fam"), str) else None,
            )
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError):
            return None
