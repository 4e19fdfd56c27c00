"""Images at rest: AES-256-GCM with a key from CXR_IMAGE_KEY, CXR_IMAGE_KEY_FILE or a generated file."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..config import Settings
from ..errors import CXRError
from .security.secret_files import read_or_create

NONCE_BYTES = 12


class ImageKeyError(CXRError):
    code = "image_key_error"
    http_status = 503


class ImageCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ImageKeyError(f"the image key must be 32 bytes (AES-256), not {len(key)}")
        self._aead = AESGCM(key)
        # Names the key a blob was sealed with, so a wrong key is reported as such, not as corruption.
        self.key_id = hashlib.sha256(b"cxr-image-key:" + key).hexdigest()[:16]
        # A separate key, derived from this one, for keyed hashes that index sealed values.
        self._index_key = hmac.new(key, b"cxr-index-key", hashlib.sha256).digest()

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageCipher:
        if settings.image_key:
            return cls(_decode_key(settings.image_key.encode(), "CXR_IMAGE_KEY"))
        if settings.image_key_file:
            try:
                raw = settings.image_key_file.read_bytes().strip()
            except OSError as exc:
                raise ImageKeyError(f"cannot read CXR_IMAGE_KEY_FILE: {exc.strerror}") from exc
            return cls(_decode_key(raw, str(settings.image_key_file)))
        path = settings.data_dir / "image.key"
        raw = read_or_create(path, lambda: base64.b64encode(secrets.token_bytes(32)), "image encryption key")
        return cls(_decode_key(raw, str(path)))

    def seal(self, plaintext: bytes, associated: bytes) -> tuple[bytes, bytes]:
        """(nonce, ciphertext); ``associated`` (the image's sha256) binds the blob to its row."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, plaintext, associated)

    def index(self, value: str) -> str:
        """HMAC-SHA256 of ``value``: equal values match, and without the key it reveals nothing."""
        return hmac.new(self._index_key, value.encode(), hashlib.sha256).hexdigest()

    def open(self, nonce: bytes, ciphertext: bytes, associated: bytes, key_id: str) -> bytes:
        if key_id != self.key_id:
            raise ImageKeyError("the image was encrypted with another key than the one configured")
        try:
            return self._aead.decrypt(nonce, ciphertext, associated)
        except InvalidTag as exc:
            raise ImageKeyError("the stored image failed authentication: altered or corrupt") from exc


def _decode_key(raw: bytes, where: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageKeyError(f"{where} must hold a base64-encoded 32-byte key") from exc
