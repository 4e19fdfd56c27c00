"""Radiograph images for the API: display PNGs and the upload preview (the stored form is store.images)."""

from __future__ import annotations

import base64
import io

from PIL import Image

from ..imaging.xray import XRay

PREVIEW_MAX_SIDE = 512
DISPLAY_MAX_SIDE = 1024
THUMBNAIL_MAX_SIDE = 128  # history rows (when images are kept)


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
