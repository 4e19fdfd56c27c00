"""Memory bounded by design while decoding: fewer pixels early, few decodes at once, memory returned.

A small compressed file can declare a large image; the decoders must hold it once, but nothing after
them needs more than ``Limits.max_side`` pixels a side (the model reads 224, overlays and displays are
capped at 1024), so every stage after the codec works on a reduced copy.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

# glibc's allocator keeps freed arenas; a spike of big decodes would stay in the RSS without this.
# Below a megapixel (the 224-pixel training images) there is nothing worth returning.
_BIG_DECODE_PIXELS = 1_000_000
_BAND_PIXELS = 1 << 20  # source pixels reduced per step of box_reduce
_gate_lock = threading.Lock()
_gate: tuple[int, threading.BoundedSemaphore] | None = None


def reduce_factor(width: int, height: int, max_side: int) -> int:
    """The integer box factor that brings the longer side to at most ``max_side`` (1: keep)."""
    longest = max(width, height)
    return max(1, math.ceil(longest / max_side)) if max_side > 0 else 1


def box_reduce(values: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each factor x factor block of a 2-D array, in its own dtype (a ragged edge is cropped).

    Done a band of block rows at a time, so the float temporaries stay small whatever the input size.
    """
    if factor <= 1:
        return values
    out_h, out_w = values.shape[0] // factor, values.shape[1] // factor
    if out_h == 0 or out_w == 0:
        return values
    out = np.empty((out_h, out_w), dtype=values.dtype)
    band = max(1, _BAND_PIXELS // (out_w * factor * factor))
    for top in range(0, out_h, band):
        rows = min(band, out_h - top)
        block = values[top * factor : (top + rows) * factor, : out_w * factor]
        mean = block.reshape(rows, factor, out_w, factor).mean(axis=(1, 3))
        out[top : top + rows] = np.rint(mean) if np.issubdtype(values.dtype, np.integer) else mean
    return out


@contextmanager
def decode_slot(slots: int) -> Iterator[None]:
    """At most ``slots`` decodes at once in this process (0 or less: unbounded)."""
    if slots <= 0:
        yield
        return
    gate = _semaphore(slots)
    with gate:
        yield


def _semaphore(slots: int) -> threading.BoundedSemaphore:
    global _gate
    with _gate_lock:
        if _gate is None or _gate[0] != slots:
            _gate = (slots, threading.BoundedSemaphore(slots))
        return _gate[1]


def release_after(pixels: int | None) -> None:
    """Give freed memory back to the system after a big or failed decode (None; glibc only)."""
    if pixels is None or pixels >= _BIG_DECODE_PIXELS:
        malloc_trim()


def malloc_trim() -> bool:
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))


_LIBC: list[ctypes.CDLL | None] = []


def _libc() -> ctypes.CDLL | None:
    if not _LIBC:
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name) if name else None
            if lib is not None and not hasattr(lib, "malloc_trim"):
                lib = None
        except OSError:
            lib = None
        _LIBC.append(lib)
    return _LIBC[0]
