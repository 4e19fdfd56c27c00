"""PyTorch datasets over a manifest, decoding through the shared imaging + preprocess code."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ..imaging import load
from ..imaging.limits import Limits
from ..imaging.preprocess import PreprocessSpec, resize_unit
from .catalog import Manifest, ManifestRow
from .labels import class_index


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentations that suit chest radiographs: small geometry and exposure changes, no flips
    (a vertical flip is anatomically impossible; a horizontal one mirrors the heart)."""

    degrees: float = 7.0
    translate: float = 0.06
    scale: tuple[float, float] = (0.92, 1.08)
    brightness: float = 0.15
    contrast: float = 0.15
    # The stronger set (off by default, so older configs train as they did): a random crop that keeps
    # most of the chest (area fraction range, near-square), a gamma curve (exposure and detector
    # response), a mild blur (a softer detector) and additive noise (a noisier one).
    crop_scale: tuple[float, float] = (1.0, 1.0)
    gamma: float = 0.0  # gamma drawn log-uniformly in [exp(-g), exp(g)]
    blur_probability: float = 0.0
    noise_std: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        values = dict(data)
        for key in ("scale", "crop_scale"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


class RandomGamma(torch.nn.Module):
    """``x ** gamma`` with log(gamma) uniform in [-g, g]: a monotone change of the exposure curve."""

    def __init__(self, log_range: float) -> None:
        super().__init__()
        self.log_range = log_range

    def forward(self, unit: torch.Tensor) -> torch.Tensor:
        gamma = math.exp((torch.rand(()).item() * 2.0 - 1.0) * self.log_range)
        return unit.clamp(0.0, 1.0) ** gamma


class AdditiveNoise(torch.nn.Module):
    """Gaussian noise of a standard deviation drawn uniformly in [0, std]."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, unit: torch.Tensor) -> torch.Tensor:
        return unit + torch.randn_like(unit) * (torch.rand(()).item() * self.std)


def build_augment(cfg: AugmentConfig, size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = []
    if cfg.crop_scale[0] < 1.0:
        steps.append(
            v2.RandomResizedCrop(size=(size, size), scale=cfg.crop_scale, ratio=(0.9, 1.1), antialias=True)
        )
    steps += [
        v2.RandomAffine(degrees=cfg.degrees, translate=(cfg.translate, cfg.translate), scale=cfg.scale),
        v2.ColorJitter(brightness=cfg.brightness, contrast=cfg.contrast),
    ]
    if cfg.gamma > 0:
        steps.append(RandomGamma(cfg.gamma))
    if cfg.blur_probability > 0:
        steps.append(
            v2.RandomApply([v2.GaussianBlur(kernel_size=5, sigma=(0.3, 1.2))], p=cfg.blur_probability)
        )
    if cfg.noise_std > 0:
        steps.append(AdditiveNoise(cfg.noise_std))
    return v2.Compose(steps)


def decode_rows(
    manifest: Manifest,
    rows: Sequence[ManifestRow],
    spec: PreprocessSpec,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Decode and resize every image once: (N, size, size) float16 in [0, 1].

    Training datasets of this size fit in memory; decoding once keeps the 2 cores on the model.
    """
    limits = Limits.from_settings()
    out = np.empty((len(rows), spec.size, spec.size), dtype=np.float16)
    for i, row in enumerate(rows):
        out[i] = resize_unit(load(manifest.absolute(row), limits).pixels, spec)
        if progress is not None:
            progress(i + 1)
    return out


class XRayTensorDataset(Dataset[tuple[torch.Tensor, int]]):
    """Decoded images in memory -> normalised (C, H, W) tensors, augmented when training."""

    def __init__(
        self,
        images: np.ndarray,
        rows: Sequence[ManifestRow],
        spec: PreprocessSpec,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.images = images
        self.targets = [class_index(r.label, r.subtype) for r in rows]
        self.spec = spec
        self.augment = augment
        self.mean = torch.tensor(spec.mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(spec.std, dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        unit = torch.from_numpy(self.images[index].astype(np.float32)).unsqueeze(0)
        if self.augment is not None:
            unit = self.augment(unit).clamp(0.0, 1.0)
        # Same arithmetic as imaging.preprocess.normalize, on tensors.
        image = (unit.expand(self.spec.channels, -1, -1) - self.mean) / self.std
        return image, self.targets[index]
