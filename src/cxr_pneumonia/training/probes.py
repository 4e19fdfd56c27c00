"""Probes: a changed copy of each radiograph, scored beside the original, to ask one question of a
model. ``centre_crop`` asks whether the framing alone moves its answer (docs/training.md, "Framing
is not a finding")."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..imaging.xray import XRay


def centre_crop(area: float) -> Callable[[XRay], XRay]:
    """Keep the centred rectangle of ``area`` (0 < area <= 1) of the image's area, same aspect ratio."""
    if not 0.0 < area <= 1.0:
        raise ValueError(f"a centre crop keeps a share of the area in (0, 1], not {area}")
    side = math.sqrt(area)

    def crop(xray: XRay) -> XRay:
        height, width = xray.pixels.shape
        keep_h, keep_w = max(1, round(height * side)), max(1, round(width * side))
        top, left = (height - keep_h) // 2, (width - keep_w) // 2
        pixels = np.ascontiguousarray(xray.pixels[top : top + keep_h, left : left + keep_w])
        return replace(xray, pixels=pixels)

    return crop
