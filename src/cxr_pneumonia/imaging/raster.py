"""PNG, JPEG, TIFF (and other ordinary raster formats) into an XRay."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from .limits import Limits
from .xray import ImageMeta, XRay

# We enforce our own pixel limit before decoding; PIL's warning threshold would only add noise.
Image.MAX_IMAGE_PIXELS = None

RASTER_FORMATS = {"png", "jpeg", "tiff", "bmp", "gif", "webp"}


def decode_raster(data: bytes, sha256: str, limits: Limits) -> XRay:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            fmt = (image.format or "unknown").lower()
            width, height = image.size
            # Checked on the header alone, before any pixel is decoded (or frames counted).
            limits.check_pixels(width, height)
            frames = int(getattr(image, "n_frames", 1) or 1)
            image.load()
            oriented, notes = _apply_orientation(image)
            colourfulness = _colourfulness(oriented)
            pixels, bit_depth = _to_grey_unit(oriented, fmt)
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputError(f"the image could not be decoded: {exc}", code="corrupt_image") from exc
    except (MemoryError, Image.DecompressionBombError) as exc:
        raise InputError(f"the image is too large to decode: {exc}", code="too_large") from exc
    except Exception as exc:  # PIL raises a zoo of exceptions on hostile input
        raise InputError(f"the image could not be decoded: {exc!r}", code="corrupt_image") from exc
    if frames > 1:
        notes = (*notes, f"{frames} frames; the first was read")
    meta = ImageMeta(
        format="jpeg" if fmt == "mpo" else fmt,
        width=pixels.shape[1],
        height=pixels.shape[0],
        bit_depth=bit_depth,
        frames=frames,
        colourfulness=colourfulness,
        notes=notes,
    )
    return XRay(pixels=pixels, meta=meta, sha256=sha256)


def _colourfulness(image: Image.Image) -> float | None:
    """Hasler & Süsstrunk (2003) colourfulness on a small copy; None for grey modes.

    About 0 for a grey image stored as RGB (Kermany's JPEGs), over 20 for ordinary photos.
    """
    if image.mode not in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        return None
    small = image.convert("RGB")
    small.thumbnail((256, 256))
    rgb = np.asarray(small, dtype=np.float32)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    spread = float(np.hypot(rg.std(), yb.std()))
    centre = float(np.hypot(rg.mean(), yb.mean()))
    return round(spread + 0.3 * centre, 3)


def _apply_orientation(image: Image.Image) -> tuple[Image.Image, tuple[str, ...]]:
    """Rotate/flip as the EXIF orientation says; a broken EXIF block does not make the pixels unreadable."""
    try:
        return ImageOps.exif_transpose(image) or image, ()
    except Exception as exc:
        return image, (f"EXIF orientation not applied ({type(exc).__name__})",)


def _to_grey_unit(image: Image.Image, fmt: str) -> tuple[np.ndarray, int]:
    """Any PIL mode to a float32 grey image in [0, 1], keeping 16-bit precision."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(image, dtype=np.uint16).astype(np.float32) / 65535.0
        return arr, 16
    if mode == "I":
        return _int32_unit(image, fmt)
    if mode == "F":
        return _full_range(np.asarray(image, dtype=np.float64)), 32
    if mode == "1":
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0, 1
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Flatten transparency onto black, the radiograph background.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    grey = image.convert("L")
    return np.asarray(grey, dtype=np.float32) / 255.0, 8


def _int32_unit(image: Image.Image, fmt: str) -> tuple[np.ndarray, int]:
    """Mode "I" holds 32-bit integers. Scale by the declared bit depth when there is one of at most
    16 bits (a PNG in mode "I" is 16-bit); a wider container has no intrinsic scale, so its full
    range is used, as for a DICOM without a window. Guessing from the values (max <= 255 -> 8-bit)
    would stretch a dark 16-bit image."""
    raw = np.asarray(image, dtype=np.int64)
    bits = 16 if fmt == "png" else _declared_bits(image)
    if bits is not None and 1 <= bits <= 16:
        top = float(2**bits - 1)
        return (np.clip(raw, 0, top) / top).astype(np.float32), bits
    return _full_range(raw.astype(np.float64)), 32


def _declared_bits(image: Image.Image) -> int | None:
    tags = getattr(image, "tag_v2", None)
    if tags is None:
        return None
    try:
        value = tags.get(258)  # TIFF BitsPerSample
        return int(value[0] if isinstance(value, tuple | list) else value)
    except Exception:
        return None


def _full_range(values: np.ndarray) -> np.ndarray:
    """Stretch the finite values to [0, 1]; NaN and infinities must not leak out of the loader."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(values.shape, dtype=np.float32)
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.float32)
    unit = (np.nan_to_num(values, nan=lo, posinf=hi, neginf=lo) - lo) / (hi - lo)
    return np.clip(unit, 0.0, 1.0).astype(np.float32)


def is_raster(fmt: str) -> bool:
    return fmt in RASTER_FORMATS
