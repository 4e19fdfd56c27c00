"""JWT signing keys in the database, named by ``kid``, so that every replica signs and verifies with
the same ones and a key can be replaced without signing anyone out (`cxr secrets rotate-jwt`).

The newest unretired key signs. Rotating adds a key and gives the older ones a ``retires_at`` far
enough ahead (the access-token lifetime plus the replicas' cache period) that every token they signed
expires first. Keys are sealed with the store's key (store/crypto.py), like images and TOTP seeds.
CXR_JWT_SECRET, when set, is one fixed key instead (rotated by changing the setting everywhere).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from .crypto import ImageCipher
from .db.base import utcnow
from .db.models import JwtKey
from .errors import Conflict
from .facade import Store

CACHE_SECONDS = 30.0  # how long a replica trusts its copy of the keys before reading them again
_RELOAD_UNKNOWN_SECONDS = 1.0  # an unknown kid (a key another replica just made) reloads at most this often


@dataclass(frozen=True)
class SigningKey:
    kid: str
    secret: bytes
    retires_at: datetime | None = None


def _associated(kid: str) -> bytes:
    return f"cxr-jwt-key:{kid}".encode()


def _new_row(cipher: ImageCipher) -> JwtKey:
    kid = secrets.token_hex(8)
    nonce, ciphertext = cipher.seal(secrets.token_bytes(48), _associated(kid))
    return JwtKey(kid=kid, key_id=cipher.key_id, nonce=nonce, ciphertext=ciphertext, created_at=utcnow())


def rotate(session: Session, cipher: ImageCipher, grace: timedelta) -> str:
    """Add a signing key; the current ones verify for ``grace`` more. Returns the new kid."""
    now = utcnow()
    session.execute(delete(JwtKey).where(JwtKey.retires_at < now - timedelta(days=1)))
    session.execute(update(JwtKey).where(JwtKey.retires_at.is_(None)).values(retires_at=now + grace))
    row = _new_row(cipher)
    session.add(row)
    session.flush()
    return row.kid


def static_key(secret: str) -> SigningKey:
    if len(secret.encode()) < 32:
        raise ValueError("the JWT signing key must have at least 32 bytes")
    return SigningKey("s-" + hashlib.sha256(secret.encode()).hexdigest()[:14], secret.encode())


class JwtKeyring:
    """The keys of one replica: read from the database, cached for CACHE_SECONDS."""

    def __init__(self, store: Store, static: SigningKey | None = None) -> None:
        self._store = store
        self._static = static
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []
        self._loaded_at = -1e9

    def reload(self) -> None:
        """Read the keys again now (instead of within CACHE_SECONDS)."""
        self._current(force=True)

    @property
    def rotatable(self) -> bool:
        return self._static is None

    def signing(self) -> SigningKey:
        keys = self._current()
        live = [k for k in keys if k.retires_at is None]
        if live:
            return live[-1]
        with self._store.transaction() as session:  # the first start: no key yet
            session.add(_new_row(self._store.cipher))
        return [k for k in self._current(force=True) if k.retires_at is None][-1]

    def verifying(self, kid: str) -> bytes | None:
        for attempt in range(2):
            now = utcnow()
            for key in self._current(force=attempt == 1 and self._stale(_RELOAD_UNKNOWN_SECONDS)):
                if key.kid == kid and (key.retires_at is None or key.retires_at > now):
                    return key.secret
        return None

    def _stale(self, seconds: float) -> bool:
        return time.monotonic() - self._loaded_at > seconds

    def _current(self, force: bool = False) -> list[SigningKey]:
        if self._static is not None:
            return [self._static]
        with self._lock:
            if force or self._stale(CACHE_SECONDS):
                self._keys = self._load()
                self._loaded_at = time.monotonic()
            return self._keys

    def _load(self) -> list[SigningKey]:
        cipher = self._store.cipher
        with self._store.reading() as session:
            rows = session.scalars(select(JwtKey).order_by(JwtKey.created_at, JwtKey.kid)).all()
            return [
                SigningKey(
                    r.kid, cipher.open(r.nonce, r.ciphertext, _associated(r.kid), r.key_id), r.retires_at
                )
                for r in rows
            ]


def keyring_for(store: Store) -> JwtKeyring:
    secret = store.settings.jwt_secret
    return JwtKeyring(store, static_key(secret) if secret else None)


def refuse_static(keyring: JwtKeyring) -> None:
    if not keyring.rotatable:
        raise Conflict("CXR_JWT_SECRET is set: rotate by changing it on every replica", code="static_jwt_key")
