"""Input size limits, checked before a full decode so a hostile file cannot exhaust memory."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError, TooLarge


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 100_000_000

    @classmethod
    def from_settings(cls) -> Limits:
        from ..config import get_settings

        s = get_settings()
        return cls(max_bytes=s.max_bytes, max_pixels=s.max_pixels)

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
