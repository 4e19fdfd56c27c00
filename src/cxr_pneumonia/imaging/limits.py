"""Input size limits, checked before a full decode so a hostile file cannot exhaust memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InputError, TooLarge

if TYPE_CHECKING:
    from ..config import Settings

# The largest CR/DX detectors are about 43x43 cm at 0.1 mm (~18.5 MP); 20 MP still takes 4200x4200.
DEFAULT_MAX_PIXELS = 20_000_000
# No stage needs more than this many pixels a side (the model reads 224; displays stop at 1024).
DEFAULT_MAX_SIDE = 2048


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_side: int = DEFAULT_MAX_SIDE  # decoded images are box-reduced to at most this many pixels a side
    decode_slots: int = 0  # decodes at once in this process; 0: unbounded

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Limits:
        from ..config import get_settings

        s = settings or get_settings()
        return cls(
            max_bytes=s.max_bytes,
            max_pixels=s.max_pixels,
            max_side=s.decode_max_side,
            decode_slots=s.decode_concurrency,
        )

    def check_bytes(self, n: int) -> None:
        if n == 0:
            raise InputError("the file is empty", code="empty_file")
        if n > self.max_bytes:
            raise TooLarge(f"the file has {n} bytes; the limit is {self.max_bytes}")

    def check_pixels(self, width: int, height: int, frames: int = 1) -> None:
        if width <= 0 or height <= 0:
            raise InputError(f"the image has no pixels ({width}x{height})", code="corrupt_image")
        total = width * height * max(frames, 1)
        if total > self.max_pixels:
            raise TooLarge(f"the image has {width}x{height}x{frames} pixels; the limit is {self.max_pixels}")
