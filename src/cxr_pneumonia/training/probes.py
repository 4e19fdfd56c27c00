"""Probes: a changed copy of each radiograph, scored beside the original, to ask one question of a
model. ``centre_crop`` asks whether the framing alone moves its answer (docs/training.md, "Framing
is not a finding"); ``stretch`` the proportions and ``grain`` the noise ("Proportions and grain are
not findings"); ``resolution`` the sharpness, the other way from grain."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from PIL import Image

from ..imaging.xray import XRay


def _centred(xray: XRay, keep_height: float, keep_width: float) -> XRay:
    """The centred part of the radiograph keeping these shares of its height and width."""
    height, width = xray.pixels.shape
    keep_h, keep_w = max(1, round(height * keep_height)), max(1, round(width * keep_width))
    top, left = (height - keep_h) // 2, (width - keep_w) // 2
    return replace(xray, pixels=np.ascontiguousarray(xray.pixels[top : top + keep_h, left : left + keep_w]))


def centre_crop(area: float) -> Callable[[XRay], XRay]:
    """Keep the centred rectangle of ``area`` (0 < area <= 1) of the image's area, same aspect ratio."""
    if not 0.0 < area <= 1.0:
        raise ValueError(f"a centre crop keeps a share of the area in (0, 1], not {area}")
    side = math.sqrt(area)
    return lambda xray: _centred(xray, side, side)


def stretch(axis: str, keep: float) -> Callable[[XRay], XRay]:
    """Keep the centred ``keep`` share (0 < keep <= 1) of the image along one axis only: served, the
    image is resized back to a square, so its anatomy is stretched along that axis by ``1 / keep``.
    ``stretch("width", 0.8)`` asks whether a wider-looking chest moves the answer. Kermany's images were
    squashed to a square from originals of many aspect ratios, so a chest's proportions in the served
    image say how it was acquired, not what it shows."""
    if axis not in ("width", "height"):
        raise ValueError(f"a stretch is along 'width' or 'height', not {axis!r}")
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"a stretch keeps a share of the axis in (0, 1], not {keep}")
    if axis == "width":
        return lambda xray: _centred(xray, 1.0, keep)
    return lambda xray: _centred(xray, keep, 1.0)


def grain(std: float, seed: int = 0) -> Callable[[XRay], XRay]:
    """Add Gaussian noise of standard deviation ``std`` (seeded, so a probe repeats) to the radiograph
    before it is served: a noisier acquisition of the same anatomy. ``grain(0.04)`` asks whether grain
    alone moves the answer (equalisation spreads it over the dark background)."""
    if std < 0:
        raise ValueError(f"a grain probe needs a standard deviation >= 0, not {std}")
    rng = np.random.default_rng(seed)

    def add(xray: XRay) -> XRay:
        noisy = xray.pixels + rng.normal(0.0, std, xray.pixels.shape)
        return replace(xray, pixels=np.clip(noisy, 0.0, 1.0).astype(np.float32))

    return add


def resolution(longer_side: int) -> Callable[[XRay], XRay]:
    """Resample the radiograph so that its longer side has ``longer_side`` pixels, then back to its own
    size: the same anatomy from a detector of that resolution (softer, no finer grain). With 112 (half
    of what a 224 package is served) it asks whether smoothness alone reads as "normal"; an image
    already that small is returned as it is."""
    if longer_side < 8:
        raise ValueError(f"a resolution probe needs a longer side of at least 8 pixels, not {longer_side}")

    def soften(xray: XRay) -> XRay:
        height, width = xray.pixels.shape
        factor = longer_side / max(height, width)
        if factor >= 1.0:
            return xray
        small = (max(1, round(width * factor)), max(1, round(height * factor)))
        image = Image.fromarray(np.asarray(xray.pixels, dtype=np.float32), mode="F")
        back = image.resize(small, Image.Resampling.BOX).resize((width, height), Image.Resampling.BILINEAR)
        return replace(xray, pixels=np.clip(np.asarray(back, dtype=np.float32), 0.0, 1.0))

    return soften
