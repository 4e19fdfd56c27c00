"""Image sizes declared inside compressed DICOM pixel data, read before anything is decoded.

A compressed DICOM frame carries its own JPEG, JPEG-LS or JPEG 2000 header, and the decoder allocates
what *that* header declares, whatever Rows and Columns say. A small file can therefore declare a frame
of billions of pixels (a decompression bomb). These readers walk the codestream's markers only as far
as the frame header, so the size can be checked against the limits and the DICOM header first.
"""

from __future__ import annotations

import struct

# JPEG start-of-frame markers (ITU T.81 B.1.1.3): C0-CF except DHT (C4), JPG (C8) and DAC (CC);
# F7 is JPEG-LS's SOF55 (ITU T.87). Their segment gives precision, height, width.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
# Markers that stand alone, without a length field.
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}
_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"  # start of codestream, then the image and tile size segment
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_HEADER_SEARCH = 1 << 16  # a JP2 wrapper's boxes before the codestream are small


def declared_size(fragment: bytes) -> tuple[int, int] | None:
    """(width, height) declared by a JPEG family or JPEG 2000 frame, or None if it is neither
    (RLE, for one, is sized by the DICOM header itself). A height of 0 means the JPEG defers it to a
    DNL marker."""
    if fragment[:2] == b"\xff\xd8":
        return _jpeg_size(fragment)
    if fragment[:4] == _J2K_SOC_SIZ:
        return _j2k_size(fragment, 0)
    if fragment[:12] == _JP2_SIGNATURE:
        start = fragment.find(_J2K_SOC_SIZ, 12, _HEADER_SEARCH)
        return _j2k_size(fragment, start) if start >= 0 else None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None  # not at a marker: the header is damaged
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return int(width), int(height)
        pos += 2 + length
    return None


def _j2k_size(data: bytes, start: int) -> tuple[int, int] | None:
    # SIZ (ITU T.800 A.5.1): Lsiz, Rsiz, then Xsiz, Ysiz, XOsiz, YOsiz as 32-bit big-endian.
    if start + 4 + 20 > len(data):
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack_from(">IIII", data, start + 8)
    return max(0, xsiz - xosiz), max(0, ysiz - yosiz)
