"""Radiograph images for the API: lossless storage form, display PNGs and the upload preview."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from ..imaging.xray import XRay

PREVIEW_MAX_SIDE = 512
DISPLAY_MAX_SIDE = 1024


def storage_png(xray: XRay) -> bytes:
    """The decoded radiograph as a lossless PNG (16-bit when the source had more than 8 bits).

    Stored instead of the upload so that no DICOM header (names, IDs, dates, UIDs) is ever kept.
    """
    if xray.meta.bit_depth > 8:
        pixels = np.clip(np.rint(xray.pixels * 65535.0), 0, 65535).astype(np.uint16)
        image = Image.fromarray(pixels)
    else:
        image = Image.fromarray(xray.to_uint8())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _downscaled(xray: XRay, max_side: int) -> Image.Image:
    image = Image.fromarray(xray.to_uint8())
    scale = min(1.0, max_side / max(image.size))
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def display_png(xray: XRay, max_side: int = DISPLAY_MAX_SIDE) -> bytes:
    buffer = io.BytesIO()
    _downscaled(xray, max_side).save(buffer, format="PNG")
    return buffer.getvalue()


def preview_data_url(xray: XRay, max_side: int = PREVIEW_MAX_SIDE) -> str:
    """What the web page shows right after an upload, even when images are not kept."""
    return "data:image/png;base64," + base64.b64encode(display_png(xray, max_side)).decode()
