"""Load any supported input (PNG, JPEG, TIFF, DICOM; a path or bytes) into an :class:`XRay`."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import InputError
from .limits import Limits
from .memory import decode_slot, release_after
from .panics import is_native_panic
from .raster import decode_raster, is_raster
from .sniff import sniff_format
from .xray import ImageMeta, XRay

Source = str | Path | bytes | bytearray | memoryview

__all__ = ["ImageMeta", "Limits", "Source", "XRay", "load", "read_source", "sniff_format"]


def read_source(source: Source, limits: Limits) -> bytes:
    """Bytes of a path or a bytes-like object, checking the size before reading a file whole."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        limits.check_bytes(len(data))
        return data
    path = Path(source)
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise InputError(f"no such file: {path}", code="not_found") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", code="unreadable") from exc
    except ValueError as exc:  # e.g. an embedded NUL byte: no file can have that name
        raise InputError(f"not a valid file name: {str(path)!r}", code="not_found") from exc
    if path.is_dir():
        raise InputError(f"{path} is a directory, not an image", code="not_a_file")
    limits.check_bytes(size)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", code="unreadable") from exc


def load(source: Source, limits: Limits | None = None) -> XRay:
    """The single way any input becomes pixels. Raises only :class:`InputError` (and subclasses)."""
    limits = limits or Limits.from_settings()
    data = read_source(source, limits)
    sha256 = hashlib.sha256(data).hexdigest()
    fmt = sniff_format(data)
    decoded = 0
    try:
        with decode_slot(limits.decode_slots):
            xray = _decode(data, sha256, fmt, limits)
        decoded = xray.meta.width * xray.meta.height
        return xray
    finally:
        # a refused or failed decode may have held the whole image: return that memory too
        release_after(decoded if decoded else None)


def _decode(data: bytes, sha256: str, fmt: str, limits: Limits) -> XRay:
    try:
        if fmt == "dicom":
            # imported here: pydicom costs ~0.4 s of start-up that a PNG/JPEG `cxr predict` never needs
            from .dicom import decode_dicom

            return decode_dicom(data, sha256, limits)
        if is_raster(fmt):
            return decode_raster(data, sha256, limits)
    except InputError:
        raise
    except Exception as exc:  # a decoder bug must still reach the caller as a clean InputError
        raise InputError(f"the image could not be decoded: {exc!r}", code="corrupt_image") from exc
    except BaseException as exc:  # a native decoder's panic is not an Exception (see panics.py)
        if not is_native_panic(exc):
            raise
        raise InputError("the image could not be decoded (decoder panic)", code="corrupt_image") from exc
    if fmt == "unknown":
        raise InputError("the file is not a PNG, JPEG, TIFF or DICOM image", code="unsupported_format")
    raise InputError(
        f"{fmt.upper()} files are not supported; send PNG, JPEG or DICOM", code="unsupported_format"
    )
