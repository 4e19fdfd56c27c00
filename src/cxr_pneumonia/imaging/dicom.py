"""DICOM Part 10 (with or without preamble) into an XRay.

The display pipeline follows PS3.3 C.11 in order: Modality LUT (or rescale slope/intercept), then
the VOI LUT or the first window centre/width (else the full range of the modality values), then the
MONOCHROME1 inversion, so that dense structures are bright whatever the file says.
"""

from __future__ import annotations

import io
import math
import warnings
import zlib
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_fragments
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from ..errors import InputError, TooLarge
from . import jpeg_codecs
from .codestream import declared_size
from .limits import Limits
from .memory import box_reduce, reduce_factor
from .panics import is_native_panic
from .xray import ImageMeta, XRay

jpeg_codecs.register()

_MONOCHROME = {"MONOCHROME1", "MONOCHROME2"}
_COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420", "PALETTE COLOR"}
# HIPAA Safe Harbor: ages over 89 are themselves identifying, so they are reported as 90.
MAX_REPORTED_AGE = 90.0


def read_dataset(data: bytes, limits: Limits, *, stop_before_pixels: bool = False) -> Dataset:
    """Parse DICOM bytes (force=True accepts files without the preamble)."""
    _check_inflated_size(data, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=stop_before_pixels)
    except Exception as exc:  # pydicom raises many kinds of errors on hostile input
        raise InputError(f"the DICOM file could not be parsed: {exc!r}", code="corrupt_image") from exc
    _ensure_transfer_syntax(ds)
    return ds


def _check_inflated_size(data: bytes, limits: Limits) -> None:
    """A deflated dataset is inflated whole by the parser: inflate it here first, with a bound, so a few
    kilobytes cannot become gigabytes. The bound is the size limit of an uncompressed file, since the
    same dataset sent uncompressed would be refused above it."""
    start = _deflated_payload_start(data)
    if start is None:
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = len(inflater.decompress(data[start:], limits.max_bytes + 1))
    except zlib.error as exc:
        raise InputError(f"the deflated DICOM dataset is corrupt: {exc}", code="corrupt_image") from exc
    if inflated > limits.max_bytes:
        raise TooLarge(f"the deflated DICOM dataset inflates past the limit of {limits.max_bytes} bytes")


def _deflated_payload_start(data: bytes) -> int | None:
    """Where the deflated data begins if this is a Part 10 file in the Deflated transfer syntax: the
    file meta group (preamble, 'DICM', then group 2 led by its mandatory group length) stays plain."""
    if data[128:132] != b"DICM" or data[132:138] != b"\x02\x00\x00\x00UL":
        return None
    meta_end = 144 + int.from_bytes(data[140:144], "little")
    uid = DeflatedExplicitVRLittleEndian.encode("ascii")
    return meta_end if uid in data[144:meta_end] else None


def _ensure_transfer_syntax(ds: Dataset) -> None:
    """A raw dataset (no file meta) is parsed fine, but pydicom will only decode its pixels when the
    transfer syntax is known: record the encoding the parser found."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None or little is None:
        return
    explicit = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    uid = ImplicitVRLittleEndian if implicit else explicit
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = uid


def decode_dicom(data: bytes, sha256: str, limits: Limits) -> XRay:
    ds = read_dataset(data, limits)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise InputError("the DICOM file holds no image (no Pixel Data)", code="no_pixel_data")
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    frames = max(1, _int(ds, "NumberOfFrames", default=1) or 1)
    # Checked on the header alone, before any pixel is decoded.
    limits.check_pixels(cols or 0, rows or 0, frames)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric in _COLOUR or _int(ds, "SamplesPerPixel", default=1) != 1:
        raise InputError(
            f"colour DICOM images ({photometric}) are not radiographs this model can read",
            code="unsupported_photometric",
        )
    if photometric not in _MONOCHROME:
        raise InputError(
            f"unknown photometric interpretation {photometric!r}", code="unsupported_photometric"
        )
    if frames > 1:
        raise InputError(
            f"multi-frame DICOM ({frames} frames) is not a single radiograph; send one frame per instance",
            code="multiframe",
        )
    _check_compressed_frame_size(ds, cols or 0, rows or 0, limits)
    stored = _decode_pixels(ds)
    factor = reduce_factor(stored.shape[1], stored.shape[0], limits.max_side)
    # reduced on the stored integers, before the LUTs make float64 copies of every pixel
    reduced = box_reduce(stored, factor)
    del stored
    display, notes = _display_pixels(reduced, ds, photometric)
    if factor > 1:
        notes = (*notes, f"read at {display.shape[1]}x{display.shape[0]} from {cols}x{rows}")
    meta = ImageMeta(
        format="dicom",
        width=int(display.shape[1]),
        height=int(display.shape[0]),
        bit_depth=_int(ds, "BitsStored", default=_int(ds, "BitsAllocated", default=8)) or 8,
        modality=text_value(ds, "Modality"),
        sop_class_uid=text_value(ds, "SOPClassUID"),
        body_part=text_value(ds, "BodyPartExamined"),
        view_position=text_value(ds, "ViewPosition"),
        photometric=photometric,
        transfer_syntax=transfer_syntax_uid(ds),
        pixel_spacing_mm=pixel_spacing_mm(ds),
        patient_age_years=age_years(ds),
        patient_sex=text_value(ds, "PatientSex"),
        frames=frames,
        notes=notes,
    )
    return XRay(pixels=display, meta=meta, sha256=sha256)


def _check_compressed_frame_size(ds: Dataset, cols: int, rows: int, limits: Limits) -> None:
    """The decoder allocates what the compressed frame's own header declares, not Rows x Columns:
    check that size too, before decoding (a small file must not make a huge image)."""
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if syntax is None or not syntax.is_encapsulated or "PixelData" not in ds:
        return
    try:
        fragments = generate_fragments(ds.PixelData)
        next(fragments)  # the Basic Offset Table
        first = next(fragments)
    except Exception as exc:  # StopIteration, ValueError, struct.error: any of them means no frame here
        raise InputError("the compressed DICOM pixel data holds no frame", code="corrupt_image") from exc
    size = declared_size(first)
    if size is None:
        return  # RLE and friends are decoded into Rows x Columns, which was checked already
    width, height = size
    limits.check_pixels(width, max(height, 1))
    if (width, height) != (cols, rows):
        raise InputError(
            f"the compressed frame declares {width}x{height} pixels but the DICOM header says {cols}x{rows}",
            code="corrupt_image",
        )


def _decode_pixels(ds: Dataset) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if transfer_syntax_uid(ds) in jpeg_codecs.SYNTAXES and jpeg_codecs.available():
                ds.pixel_array_options(decoding_plugin=jpeg_codecs.PLUGIN)  # the permissive one, always
            arr = ds.pixel_array
    except NotImplementedError as exc:
        raise InputError(
            f"the transfer syntax {transfer_syntax_uid(ds)} cannot be decoded here: {exc}",
            code="unsupported_transfer_syntax",
        ) from exc
    except MemoryError as exc:
        raise InputError("the DICOM image is too large to decode", code="too_large") from exc
    except Exception as exc:
        raise InputError(f"the DICOM pixel data could not be decoded: {exc!r}", code="corrupt_image") from exc
    except BaseException as exc:
        if not is_native_panic(exc):
            raise
        raise InputError(
            "the DICOM pixel data could not be decoded (decoder panic)", code="corrupt_image"
        ) from exc
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(f"unexpected pixel array shape {arr.shape}", code="unsupported_image")
    return arr


def _display_pixels(stored: np.ndarray, ds: Dataset, photometric: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Stored values -> [0, 1] display values, dense bright; plus notes on what had to be skipped."""
    notes: list[str] = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            values = apply_modality_lut(stored, ds)
        except Exception as exc:
            raise InputError(
                f"the DICOM Modality LUT could not be applied: {exc!r}", code="corrupt_image"
            ) from exc
        unit = _apply_voi(values, ds, notes)
    if photometric == "MONOCHROME1":
        unit = 1.0 - unit
    return np.ascontiguousarray(unit, dtype=np.float32), tuple(notes)


def _apply_voi(values: np.ndarray, ds: Dataset, notes: list[str]) -> np.ndarray:
    """The VOI stage, mapped to [0, 1]: the VOI LUT if any (pydicom's preference), else the first
    window, else the full range of the values. A VOI that cannot be applied falls back to the next
    option (and says so) rather than rejecting an otherwise readable image."""
    if ds.get("VOILUTSequence"):
        try:
            return _voi_lut_unit(values, ds)
        except Exception as exc:
            notes.append(f"VOI LUT not applied ({type(exc).__name__}); window or full range used")
    if "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            return _window_unit(values, ds)
        except Exception as exc:
            notes.append(f"window not applied ({type(exc).__name__}); full range used")
    return _full_range_unit(values)


def _voi_lut_unit(values: np.ndarray, ds: Dataset) -> np.ndarray:
    entries, first_mapped, bits = (int(v) for v in ds.VOILUTSequence[0].LUTDescriptor)
    # pydicom indexes the LUT through a uint16 array: float input is truncated and values past 65535
    # wrap round to small indices. Rounding and clamping to the LUT's input range first gives the
    # standard's behaviour (below the first entry -> first, above the last -> last).
    last_mapped = first_mapped + (entries or 65536) - 1
    values = np.clip(np.rint(np.nan_to_num(np.asarray(values, dtype=np.float64))), first_mapped, last_mapped)
    out = np.asarray(apply_voi(values.astype(np.int64), ds, index=0), dtype=np.float64)
    # PS3.3 C.11.2.1.1: a VOI LUT's output range is 0 .. 2**n - 1, n the third descriptor value.
    return _scale(out, 0.0, float(2**bits - 1))


def _window_unit(values: np.ndarray, ds: Dataset) -> np.ndarray:
    out = np.asarray(apply_windowing(np.asarray(values, dtype=np.float64), ds, index=0), dtype=np.float64)
    # pydicom maps a window onto an output range that depends on BitsStored, PixelRepresentation,
    # a Modality LUT and rescale slope/intercept. Rather than re-derive that, ask pydicom: values far
    # below and above any window land exactly on the ends of its output range.
    ends = apply_windowing(np.array([-1e300, 1e300]), ds, index=0)
    return _scale(out, float(ends[0]), float(ends[1]))


def _full_range_unit(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(values.shape, dtype=np.float32)
    return _scale(values, float(finite.min()), float(finite.max()))


def _scale(values: np.ndarray, black: float, white: float) -> np.ndarray:
    """Map black -> 0 and white -> 1 (white < black is allowed: a negative rescale slope), clipped."""
    if not (math.isfinite(black) and math.isfinite(white)) or black == white:
        return np.zeros(values.shape, dtype=np.float32)
    unit = (np.nan_to_num(values, nan=black) - black) / (white - black)
    return np.clip(unit, 0.0, 1.0).astype(np.float32)


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    try:
        value = ds.get(keyword, default)
        return int(value) if value is not None and value != "" else default
    except Exception:  # a malformed value (wrong VR, multi-valued, undecodable) reads as absent
        return default


def text_value(ds: Dataset, keyword: str) -> str | None:
    try:
        value = ds.get(keyword)
    except Exception:
        return None
    if value is None:
        return None
    text = str(value).strip()
    return text.upper() if text else None


def transfer_syntax_uid(ds: Dataset) -> str | None:
    meta: Any = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    return str(uid) if uid else None


def pixel_spacing_mm(ds: Dataset) -> tuple[float, float] | None:
    """Row and column spacing in mm; absent, zero, negative or non-finite values mean unknown."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            value = ds.get(keyword)
            if value is None or len(value) != 2:
                continue
            row, col = float(value[0]), float(value[1])
        except Exception:
            continue
        if math.isfinite(row) and math.isfinite(col) and row > 0 and col > 0:
            return (row, col)
    return None


def age_years(ds: Dataset) -> float | None:
    """PatientAge is 'nnnD', 'nnnW', 'nnnM' or 'nnnY'."""
    raw = text_value(ds, "PatientAge")
    if not raw or len(raw) < 2 or not raw[:-1].isdigit():
        return None
    number, unit = int(raw[:-1]), raw[-1]
    scale = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}.get(unit)
    return min(round(number * scale, 2), MAX_REPORTED_AGE) if scale is not None else None
