"""Recognise a panic raised by a Rust decoder.

pyo3 turns a Rust panic into ``pyo3_runtime.PanicException``, which derives from BaseException, not
Exception, so ``except Exception`` lets it through. pylibjpeg-rle panics on some corrupt RLE data
(found by tests/imaging/test_fuzz.py). The class lives in a module created at runtime and cannot be
imported, so it is recognised by name.
"""

from __future__ import annotations


def is_native_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException" and not isinstance(exc, Exception)
