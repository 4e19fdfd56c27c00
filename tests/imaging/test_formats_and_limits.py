"""Format sniffing from content, size limits checked before decoding, and inputs that are refused."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxr_pneumonia.errors import InputError, TooLarge
from cxr_pneumonia.imaging import Limits, load, sniff_format

LIMITS = Limits()


def png_bytes(width: int = 8, height: int = 6) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width), 128, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def with_png_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite a PNG's IHDR width and height (and the chunk's CRC, so the header stays valid)."""
    assert data[12:16] == b"IHDR"
    body = bytearray(data[16:29])  # 13 bytes: width, height, depth, colour type, ...
    body[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(body)) & 0xFFFFFFFF)
    return data[:16] + bytes(body) + crc + data[33:]


def error_code(source, limits: Limits = LIMITS) -> str:
    with pytest.raises(InputError) as info:
        load(source, limits)
    return info.value.code


# -- sniffing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff\xe0", "jpeg"),
        (b"II*\x00", "tiff"),
        (b"MM\x00*", "tiff"),
        (b"GIF89a", "gif"),
        (b"BM", "bmp"),
        (b"RIFF\x00\x00\x00\x00WEBP", "webp"),
        (b"%PDF-1.7", "pdf"),
        (b"PK\x03\x04", "zip"),
        (b"\x00" * 128 + b"DICM", "dicom"),
        (b"hello, world", "unknown"),
    ],
)
def test_sniff_format(head: bytes, fmt: str) -> None:
    assert sniff_format(head + b"\x00" * 16) == fmt


def test_sniff_short_inputs() -> None:
    assert sniff_format(b"") == "unknown"
    assert sniff_format(b"\x08\x00") == "unknown"


def test_png_named_dcm_loads_as_png(tmp_path: Path) -> None:
    path = tmp_path / "image.dcm"
    path.write_bytes(png_bytes())
    assert load(path, LIMITS).meta.format == "png"


def test_dicom_named_jpg_loads_as_dicom(tmp_path: Path, make_dataset, dicom_bytes) -> None:
    path = tmp_path / "image.jpg"
    path.write_bytes(dicom_bytes(make_dataset(np.arange(6, dtype=np.uint16).reshape(2, 3))))
    xray = load(path, LIMITS)
    assert xray.meta.format == "dicom" and xray.shape == (2, 3)


def test_real_dicom_named_jpg_loads_as_dicom(tmp_path: Path, shared_dicom: Path) -> None:
    # A link, not a copy: the shared images stay where they are.
    link = tmp_path / "chest.jpg"
    link.symlink_to(shared_dicom / "cr-chest-monochrome2-jpeg-baseline.dcm")
    assert load(link, LIMITS).meta.format == "dicom"


# -- limits ---------------------------------------------------------------------------------------


def test_empty_file_and_bytes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert error_code(empty) == "empty_file"
    assert error_code(b"") == "empty_file"


def test_over_max_bytes(tmp_path: Path) -> None:
    data = png_bytes()
    small = Limits(max_bytes=len(data) - 1, max_pixels=LIMITS.max_pixels)
    path = tmp_path / "a.png"
    path.write_bytes(data)
    assert error_code(path, small) == "too_large"
    assert error_code(data, small) == "too_large"
    with pytest.raises(TooLarge):
        load(data, small)
    assert load(data, Limits(max_bytes=len(data), max_pixels=100)).shape == (6, 8)


def test_over_max_pixels() -> None:
    assert error_code(png_bytes(8, 6), Limits(max_bytes=LIMITS.max_bytes, max_pixels=47)) == "too_large"
    assert load(png_bytes(8, 6), Limits(max_bytes=LIMITS.max_bytes, max_pixels=48)).shape == (6, 8)


def test_png_header_claiming_50000_square_is_refused_before_decoding() -> None:
    huge = with_png_size(png_bytes(), 50000, 50000)
    assert Image.open(io.BytesIO(huge)).size == (50000, 50000)  # the header is valid and claims that
    # Decoding would fail as "corrupt" (the data is 8x6) after allocating 2.5 GB; "too_large" shows the
    # limit was checked on the header first.
    assert error_code(huge) == "too_large"


def test_png_with_a_broken_header_crc_is_corrupt() -> None:
    data = bytearray(png_bytes())
    data[29] ^= 0xFF  # the IHDR CRC
    assert error_code(bytes(data)) == "corrupt_image"


# -- what is refused ------------------------------------------------------------------------------


def test_pdf_zip_and_text_are_unsupported(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("image.png", png_bytes())
    for data in (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n", buffer.getvalue(), b"just some text\n"):
        assert error_code(data) == "unsupported_format"


def test_missing_path_directory_and_bad_name(tmp_path: Path) -> None:
    assert error_code(tmp_path / "nope.png") == "not_found"
    assert error_code(str(tmp_path / "nope.png")) == "not_found"
    assert error_code(tmp_path) == "not_a_file"
    assert error_code(str(tmp_path / "bad\x00name.png")) == "not_found"


def test_truncated_png_and_jpeg_are_corrupt() -> None:
    data = png_bytes(64, 64)
    assert error_code(data[: len(data) // 2]) == "corrupt_image"
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(buffer, "JPEG")
    assert error_code(buffer.getvalue()[:300]) == "corrupt_image"


def test_bytes_like_sources() -> None:
    data = png_bytes()
    for source in (data, bytearray(data), memoryview(data)):
        assert load(source, LIMITS).shape == (6, 8)
