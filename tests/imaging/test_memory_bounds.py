"""Memory bounded by design: the default pixel limit, reduction right after the codec, the decode gate."""

from __future__ import annotations

import io
import threading
import time
import tracemalloc

import numpy as np
import pytest
from dicom_builders import build_dataset, to_bytes
from PIL import Image
from test_formats_and_limits import error_code, png_bytes, with_png_size

from cxr_pneumonia.config import Settings
from cxr_pneumonia.imaging import Limits, load

DEFAULTS = Limits(max_pixels=Settings().max_pixels)


def _encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _chest_like(height: int, width: int, dtype: type = np.uint8) -> np.ndarray:
    top = 255 if dtype is np.uint8 else 4095
    rows = np.linspace(0.2, 0.9, height, dtype=np.float32)[:, None]
    cols = np.abs(np.linspace(-1.0, 1.0, width, dtype=np.float32))[None, :]
    return np.rint(rows * cols * top).astype(dtype)


def test_the_default_takes_the_largest_detector_and_refuses_a_hundred_megapixels() -> None:
    assert 4200 * 4200 <= DEFAULTS.max_pixels < 9999 * 10000
    # a header declaring 9999x10000 is refused before a pixel is decoded
    assert error_code(with_png_size(png_bytes(), 9999, 10000), DEFAULTS) == "too_large"
    assert load(_encoded(_chest_like(4200, 4200), "PNG"), DEFAULTS).meta.notes


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_large_rasters_are_reduced_right_after_the_codec(fmt: str) -> None:
    xray = load(_encoded(_chest_like(4200, 3000), fmt), DEFAULTS)
    assert max(xray.shape) <= Settings().decode_max_side
    assert xray.shape[0] > xray.shape[1]  # the aspect ratio is kept
    assert any("from 3000x4200" in note for note in xray.meta.notes)


def test_sixteen_bit_pngs_and_dicom_stay_sixteen_bit_when_reduced() -> None:
    pixels = _chest_like(4200, 4200, np.uint16)
    png = load(_encoded(pixels, "PNG"), DEFAULTS)
    dcm = load(to_bytes(build_dataset(pixels, bits_stored=12)), DEFAULTS)
    for xray in (png, dcm):
        assert max(xray.shape) <= Settings().decode_max_side and xray.meta.bit_depth > 8
        assert len(np.unique(xray.pixels)) > 256  # more than 8 bits of grey survived the reduction


def test_decoding_a_4200_square_png_peaks_far_below_its_float_copy() -> None:
    """A full-size float32 copy of 4200x4200 is 70 MB (and the old path made two): now none is made."""
    data = _encoded(_chest_like(4200, 4200, np.uint16), "PNG")
    tracemalloc.start()
    try:
        load(data, DEFAULTS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 60 * 1024 * 1024, f"numpy peak {peak / 1e6:.0f} MB"


def test_the_decode_gate_lets_only_its_slots_in_at_once() -> None:
    from cxr_pneumonia.imaging.memory import decode_slot

    inside, most = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with decode_slot(2):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.05)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 2
    assert Settings().decode_concurrency >= 1  # bounded by default
