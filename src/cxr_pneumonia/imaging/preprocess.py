"""Turn an XRay into the model's input tensor, exactly as the model package's spec says.

Training and serving both call these functions, so the pixels a model sees at serving time are the
pixels it saw in training (the torchxrayvision lesson: a wrong pixel range gives silent garbage).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ModelError
from .xray import XRay

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESS_VERSION = "1"  # resize and normalise only
INTENSITY_VERSION = "2"  # version 1 plus an ``intensity`` transform; older code refuses it, not ignores it
SUPPORTED_RESIZE = ("stretch-bilinear",)
# "none": the pixels as decoded. "equalize": 256-level histogram equalisation of the resized image, so
# exposure and contrast differences between acquisition set-ups reach the network flattened.
SUPPORTED_INTENSITY = ("none", "equalize")
EQUALIZE_LEVELS = 256


@dataclass(frozen=True)
class PreprocessSpec:
    """How pixels in [0, 1] become a model input. Stored in model.json."""

    size: int = 224
    # The Kermany copy was squashed to 224x224 without keeping the aspect ratio, so serving squashes too.
    resize: str = "stretch-bilinear"
    channels: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    intensity: str = "none"
    version: str = ""  # empty: the version the intensity transform needs

    def __post_init__(self) -> None:
        if not self.version:
            version = PREPROCESS_VERSION if self.intensity == "none" else INTENSITY_VERSION
            object.__setattr__(self, "version", version)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        if self.intensity == "none":
            del data["intensity"]  # a version-1 spec reads and hashes exactly as before
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        spec = cls(
            size=int(data["size"]),
            resize=str(data["resize"]),
            channels=int(data["channels"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            intensity=str(data.get("intensity", "none")),
            version=str(data["version"]),
        )
        spec.check_supported()
        return spec

    def check_supported(self) -> None:
        """Refuse a spec this code cannot honour rather than guess."""
        if self.resize not in SUPPORTED_RESIZE:
            raise ModelError(f"preprocessing resize {self.resize!r} is not supported by this version")
        if self.version not in (PREPROCESS_VERSION, INTENSITY_VERSION):
            raise ModelError(
                f"preprocessing version {self.version!r} is not one this code reads "
                f"({PREPROCESS_VERSION!r}, {INTENSITY_VERSION!r})"
            )
        if self.intensity not in SUPPORTED_INTENSITY:
            raise ModelError(f"preprocessing intensity {self.intensity!r} is not supported by this version")
        if (self.version == PREPROCESS_VERSION) != (self.intensity == "none"):
            raise ModelError(
                f"preprocessing version {self.version!r} does not go with intensity {self.intensity!r}"
            )
        if self.channels not in (1, 3) or len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ModelError("preprocessing channels, mean and std do not agree")
        if not 16 <= self.size <= 2048:
            raise ModelError(f"preprocessing size {self.size} is out of range")


def resize_unit(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Grey [0, 1] image of any size -> spec.size x spec.size float32 in [0, 1] (antialiased), then the
    spec's intensity transform."""
    if pixels.shape == (spec.size, spec.size):
        resized = np.asarray(pixels, dtype=np.float32)
    else:
        image = Image.fromarray(np.asarray(pixels, dtype=np.float32), mode="F")
        scaled = image.resize((spec.size, spec.size), Image.Resampling.BILINEAR)
        resized = np.clip(np.asarray(scaled, dtype=np.float32), 0.0, 1.0)
    return equalize(resized) if spec.intensity == "equalize" else resized


def equalize(unit: np.ndarray) -> np.ndarray:
    """Histogram equalisation of a [0, 1] image on 256 levels (as OpenCV's equalizeHist on 8 bits): each
    level maps to the share of pixels at or below it, the darkest present level to 0. A flat image
    stays as it is (nothing to spread)."""
    levels = np.clip(np.rint(unit * (EQUALIZE_LEVELS - 1)), 0, EQUALIZE_LEVELS - 1).astype(np.intp)
    cdf = np.cumsum(np.bincount(levels.ravel(), minlength=EQUALIZE_LEVELS))
    darkest = cdf[np.flatnonzero(cdf)[0]]
    if cdf[-1] == darkest:
        return np.asarray(unit, dtype=np.float32)
    table = np.clip((cdf - darkest) / float(cdf[-1] - darkest), 0.0, 1.0).astype(np.float32)
    return table[levels]


def normalize(unit: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """size x size grey [0, 1] -> C x size x size float32 normalised with the spec's mean/std."""
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec.std, dtype=np.float32).reshape(-1, 1, 1)
    stacked = np.broadcast_to(unit[None, :, :], (spec.channels, *unit.shape))
    return ((stacked - mean) / std).astype(np.float32)


def to_model_input(xray: XRay, spec: PreprocessSpec) -> np.ndarray:
    """XRay -> C x H x W float32, ready to be stacked into a batch."""
    return normalize(resize_unit(xray.pixels, spec), spec)
