"""The caller's reference on a prediction (e.g. an accession number): it tells history rows apart.

It may identify a patient, so it is sealed with the image key (AES-GCM, bound to the prediction id)
and only an HMAC of it is searchable; it never enters the audit chain, logs or the record's digest.
"""

from __future__ import annotations

from ..errors import InputError
from .crypto import ImageCipher
from .db.models import PredictionRecord

MAX_LENGTH = 64


def clean(reference: str | None) -> str | None:
    """The reference as stored and searched: stripped; None when empty; refused when odd."""
    if reference is None or not reference.strip():
        return None
    value = reference.strip()
    if len(value) > MAX_LENGTH or not value.isprintable():
        raise InputError(f"a reference is at most {MAX_LENGTH} printable characters", code="bad_reference")
    return value


def seal(row: PredictionRecord, cipher: ImageCipher, reference: str) -> None:
    row.reference_nonce, row.reference_ciphertext = cipher.seal(reference.encode(), _bound(row.id))
    row.reference_key_id = cipher.key_id
    row.reference_hmac = cipher.index(reference)


def read(row: PredictionRecord, cipher: ImageCipher) -> str | None:
    if row.reference_ciphertext is None or row.reference_nonce is None:
        return None
    plain = cipher.open(
        row.reference_nonce, row.reference_ciphertext, _bound(row.id), row.reference_key_id or ""
    )
    return plain.decode()


def _bound(prediction_id: str) -> bytes:
    return b"reference:" + prediction_id.encode()
