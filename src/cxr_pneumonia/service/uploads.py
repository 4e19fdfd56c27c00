"""Reading uploaded files: in chunks, never past a cap (Starlette spools large parts to disk)."""

from __future__ import annotations

from fastapi import UploadFile

from ..errors import InputError, TooLarge

CHUNK_BYTES = 1 << 20


def read_capped(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes; TooLarge as soon as it passes ``limit``, InputError when empty."""
    buffer = bytearray()
    upload.file.seek(0)
    while chunk := upload.file.read(CHUNK_BYTES):
        buffer += chunk
        if len(buffer) > limit:
            raise TooLarge(f"the file has more than {limit} bytes; the limit is {limit}")
    if not buffer:
        raise InputError("the file is empty", code="empty_file")
    return bytes(buffer)
