"""The form a radiograph is kept in: a lossless PNG of the decoded pixels, never the upload itself."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..imaging.xray import XRay


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
