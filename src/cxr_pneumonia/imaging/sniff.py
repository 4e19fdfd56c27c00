"""Tell the format of an input from its first bytes, never from its file name."""

from __future__ import annotations

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"%PDF", "pdf"),
    (b"PK\x03\x04", "zip"),
)


def sniff_format(data: bytes) -> str:
    """Return 'png', 'jpeg', 'tiff', 'dicom', another known name, or 'unknown'."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if _looks_like_raw_dicom(data):
        return "dicom"
    return "unknown"


def _looks_like_raw_dicom(data: bytes) -> bool:
    """A DICOM dataset without the 128-byte preamble and 'DICM' starts with a group 0x0002 or 0x0008
    element in little endian; explicit VR files then carry a two-letter VR."""
    if len(data) < 8:
        return False
    group = int.from_bytes(data[0:2], "little")
    if group not in (0x0002, 0x0008):
        return False
    vr = data[4:6]
    if vr.isalpha() and vr.isupper():
        return True
    # implicit VR little endian: a 4-byte length that fits the file
    length = int.from_bytes(data[4:8], "little")
    return 0 < length < len(data)
