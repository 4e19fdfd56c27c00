"""PNG, JPEG, TIFF (and other ordinary raster formats) into an XRay."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from .limits import Limits
from .memory import box_reduce, reduce_factor
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
            _draft(image, limits.max_side)
            image.load()
            reduced = _reduced(image, limits.max_side)
            oriented, notes = _apply_orientation(reduced)
            if reduced.size != (width, height):
                notes = (*notes, f"read at {reduced.width}x{reduced.height} from {width}x{height}")
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


def _draft(image: Image.Image, max_side: int) -> None:
    """Let the JPEG decoder scale by 1/2, 1/4 or 1/8 in the DCT, so the full image is never held."""
    if image.format not in ("JPEG", "MPO") or max(image.size) <= max_side:
        return
    scale = max_side / max(image.size)
    wanted = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    image.draft(image.mode if image.mode in ("L", "RGB") else None, wanted)


def _reduced(image: Image.Image, max_side: int) -> Image.Image:
    """Box-reduce to at most ``max_side`` a side, before any float copy is made (memory.py)."""
    factor = reduce_factor(image.width, image.height, max_side)
    if factor == 1:
        return image
    info = dict(image.info)  # EXIF orientation and transparency must survive the reduction
    if image.mode.startswith("I;16"):  # Pillow cannot reduce these modes itself; 16 bits are kept
        reduced = Image.fromarray(_reduced_16bit(image, factor))
    elif image.mode in ("1", "P", "PA"):
        flat = "RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB"
        reduced = image.convert("L" if image.mode == "1" else flat).reduce(factor)
    else:
        reduced = image.reduce(factor)
    reduced.info.update({k: v for k, v in info.items() if k != "transparency"})
    return reduced


def _reduced_16bit(image: Image.Image, factor: int) -> np.ndarray:
    """Box-reduce a 16-bit image a band at a time: a numpy copy of the whole would double its memory."""
    out_w, out_h = image.width // factor, image.height // factor
    band = max(1, (1 << 20) // (out_w * factor * factor))
    parts = []
    for top in range(0, out_h, band):
        rows = min(band, out_h - top)
        strip = image.crop((0, top * factor, out_w * factor, (top + rows) * factor))
        parts.append(box_reduce(np.asarray(strip, dtype=np.uint16), factor))
    return np.concatenate(parts)


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
