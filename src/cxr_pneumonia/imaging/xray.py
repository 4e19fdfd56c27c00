"""The one in-memory form of a radiograph that every later stage consumes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ImageMeta:
    """What later stages need to know about an input, and nothing that identifies the patient."""

    format: str  # "png" | "jpeg" | "tiff" | "dicom" | ...
    width: int
    height: int
    bit_depth: int
    # DICOM only (None elsewhere)
    modality: str | None = None
    sop_class_uid: str | None = None
    body_part: str | None = None
    view_position: str | None = None
    photometric: str | None = None
    transfer_syntax: str | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    patient_age_years: float | None = None
    patient_sex: str | None = None
    frames: int = 1
    # Hasler-Süsstrunk colourfulness of a colour source (None for grey sources): radiographs are grey,
    # so a colourful input is a photo or a screenshot, whatever the model would say about it.
    colourfulness: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        if self.pixel_spacing_mm is not None:
            data["pixel_spacing_mm"] = list(self.pixel_spacing_mm)
        return data


@dataclass(frozen=True)
class XRay:
    """A radiograph as a radiologist would see it.

    ``pixels`` is a 2-D float32 array in [0, 1], dense structures bright (bone white, air black).
    """

    pixels: np.ndarray
    meta: ImageMeta
    sha256: str

    def __post_init__(self) -> None:
        if self.pixels.ndim != 2 or self.pixels.dtype != np.float32:
            raise ValueError("XRay.pixels must be a 2-D float32 array")

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))

    def to_uint8(self) -> np.ndarray:
        """8-bit view for display and PNG export."""
        return np.clip(np.rint(self.pixels * 255.0), 0, 255).astype(np.uint8)

    def pixel_stats(self) -> dict[str, float]:
        p = self.pixels
        return {
            "min": float(p.min()),
            "max": float(p.max()),
            "mean": float(p.mean()),
            "std": float(p.std()),
        }
