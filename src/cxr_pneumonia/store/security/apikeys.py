"""API keys: ``cxr_<id>_<secret>``; the id finds the row, only the secret's sha256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "cxr"
_PATTERN = re.compile(r"^cxr_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret_sha256: str
    token: str  # shown to the caller once, never stored


def generate() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)  # 43 characters, 256 bits
    return NewKey(key_id, _digest(secret), f"{PREFIX}_{key_id}_{secret}")


def parse(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None (checked before any database lookup)."""
    match = _PATTERN.match(token.strip()) if len(token) < 128 else None
    return (match.group(1), match.group(2)) if match else None


def matches(secret: str, secret_sha256: str) -> bool:
    return hmac.compare_digest(_digest(secret), secret_sha256)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
