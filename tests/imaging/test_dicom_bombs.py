"""Compressed DICOM that would decompress into far more than it admits to: refused before decoding.

The frame header inside JPEG / JPEG 2000 pixel data, not Rows x Columns, decides what a decoder
allocates; a deflated dataset is inflated whole by the parser. Both are checked first.
"""

from __future__ import annotations

import io
import struct
import time

import numpy as np
import openjpeg
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.encaps import encapsulate, generate_fragments
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit

from cxr_pneumonia.errors import InputError, TooLarge
from cxr_pneumonia.imaging import Limits, load
from cxr_pneumonia.imaging.codestream import declared_size

LIMITS = Limits()
BOMB_SIDE = 60_000  # 3.6 gigapixels


def _gradient(rows: int = 64, cols: int = 48) -> np.ndarray:
    return (np.add.outer(np.arange(rows), np.arange(cols)) * 2 % 256).astype(np.uint8)


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _j2k(pixels: np.ndarray) -> bytes:
    return bytes(openjpeg.encode(pixels))  # a raw J2K codestream, lossless


def _with_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    sof = jpeg.index(b"\xff\xc0")  # Pillow writes baseline JPEG
    return jpeg[: sof + 5] + struct.pack(">HH", height, width) + jpeg[sof + 9 :]


def _with_j2k_size(j2k: bytes, width: int, height: int) -> bytes:
    assert j2k[:4] == b"\xff\x4f\xff\x51"
    return j2k[:8] + struct.pack(">II", width, height) + j2k[16:]


def _compressed_dicom(make_dataset, dicom_bytes, frame: bytes, syntax: str, rows: int, cols: int) -> bytes:
    ds = make_dataset(np.zeros((rows, cols), dtype=np.uint8))
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    return dicom_bytes(ds)


# ---- the header readers agree with the DICOM header on real files --------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "SC_jpeg_no_color_transform.dcm",  # JPEG baseline
        "JPEG-lossy.dcm",  # JPEG extended
        "JPEG-LL.dcm",  # JPEG lossless
        "JPEGLSNearLossless_16.dcm",  # JPEG-LS
        "RG1_J2KR.dcm",  # JPEG 2000 codestream
        "GDCMJ2K_TextGBR.dcm",  # JPEG 2000 wrapped in a JP2 file
    ],
)
def test_declared_size_matches_rows_and_columns_of_real_files(pydicom_data_file, name: str) -> None:
    ds = dcmread(pydicom_data_file(name))
    fragments = generate_fragments(ds.PixelData)
    next(fragments)
    assert declared_size(next(fragments)) == (ds.Columns, ds.Rows)


def test_declared_size_of_what_is_not_a_codestream_is_none() -> None:
    assert declared_size(b"") is None
    assert declared_size(b"\x02\x00\x00\x00" + bytes(60)) is None  # an RLE header
    assert declared_size(b"\xff\xd8\xff\xda" + bytes(10)) is None  # a scan before any frame header
    assert declared_size(b"\xff\xd8\x00\x00") is None  # not at a marker


# ---- JPEG -----------------------------------------------------------------------------------------
def test_honest_jpeg_dicom_decodes(make_dataset, dicom_bytes) -> None:
    pixels = _gradient()
    data = _compressed_dicom(make_dataset, dicom_bytes, _jpeg(pixels), JPEGBaseline8Bit, *pixels.shape)
    xray = load(data, LIMITS)
    assert xray.pixels.shape == pixels.shape


def test_jpeg_frame_declaring_gigapixels_is_refused_before_decoding(make_dataset, dicom_bytes) -> None:
    bomb = _with_jpeg_size(_jpeg(_gradient()), BOMB_SIDE, BOMB_SIDE)
    data = _compressed_dicom(make_dataset, dicom_bytes, bomb, JPEGBaseline8Bit, 64, 48)
    started = time.perf_counter()
    with pytest.raises(TooLarge, match="60000x60000"):
        load(data, LIMITS)
    assert time.perf_counter() - started < 1.0  # nothing was decoded
    assert len(data) < 10_000


def test_jpeg_frame_disagreeing_with_the_header_is_corrupt(make_dataset, dicom_bytes) -> None:
    frame = _with_jpeg_size(_jpeg(_gradient()), 32, 32)
    data = _compressed_dicom(make_dataset, dicom_bytes, frame, JPEGBaseline8Bit, 64, 48)
    with pytest.raises(InputError, match=r"declares 32x32 .* says 48x64") as caught:
        load(data, LIMITS)
    assert caught.value.code == "corrupt_image"


# ---- JPEG 2000 ------------------------------------------------------------------------------------
def test_j2k_frame_declaring_gigapixels_is_refused_before_decoding(make_dataset, dicom_bytes) -> None:
    honest = _j2k(_gradient())
    ok = _compressed_dicom(make_dataset, dicom_bytes, honest, JPEG2000Lossless, 64, 48)
    np.testing.assert_array_equal(load(ok, LIMITS).pixels.shape, (64, 48))
    bomb = _compressed_dicom(
        make_dataset, dicom_bytes, _with_j2k_size(honest, BOMB_SIDE, BOMB_SIDE), JPEG2000Lossless, 64, 48
    )
    with pytest.raises(TooLarge, match="60000x60000"):
        load(bomb, LIMITS)


# ---- deflate --------------------------------------------------------------------------------------
def _deflated(make_dataset, dicom_bytes, rows: int, cols: int) -> bytes:
    ds = make_dataset(np.zeros((rows, cols), dtype=np.uint16))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return dicom_bytes(ds)


def test_deflated_dataset_within_the_limit_loads(make_dataset, dicom_bytes) -> None:
    xray = load(_deflated(make_dataset, dicom_bytes, 256, 256), Limits(max_bytes=1_000_000))
    assert xray.pixels.shape == (256, 256)


def test_deflated_dataset_inflating_past_the_limit_is_refused(make_dataset, dicom_bytes) -> None:
    data = _deflated(make_dataset, dicom_bytes, 2048, 2048)  # 8 MiB of zeros inflate from a few KiB
    limits = Limits(max_bytes=1_000_000)
    assert len(data) < 100_000
    with pytest.raises(TooLarge, match="inflates past"):
        load(data, limits)


def test_corrupt_deflate_stream_is_an_input_error(make_dataset, dicom_bytes) -> None:
    data = _deflated(make_dataset, dicom_bytes, 64, 64)
    meta_end = 144 + int.from_bytes(data[140:144], "little")
    broken = data[:meta_end] + b"\xff" * 64 + data[meta_end + 64 :]
    with pytest.raises(InputError):
        load(broken, LIMITS)
