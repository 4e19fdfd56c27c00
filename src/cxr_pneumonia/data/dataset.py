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
from ..imaging.preprocess import PreprocessSpec, equalize, resize_unit
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
    # Reframing (off by default): with these probabilities a normal / a pneumonia image is first
    # cropped to an area fraction in reframe_scale, so both classes hold tightly framed chests with
    # little dark background. In Kermany's training split 2.4% of normals are framed that tight (under
    # 1% of pixels below 10/255) against 38% of bacterial cases, so framing alone predicts the class;
    # reframing normals more often than pneumonia breaks that shortcut (docs/training.md, "Framing is
    # not a finding").
    normal_reframe_probability: float = 0.0
    pneumonia_reframe_probability: float = 0.0
    reframe_scale: tuple[float, float] = (0.5, 0.8)
    # Stretching (off by default): with this probability an image of either class keeps only a random
    # share in stretch_keep of its width or of its height, resized back to a square, so the chest looks
    # wider or taller. Kermany's images were squashed to a square from originals of many aspect ratios,
    # and a model trained without this reads proportions as evidence: kept at 80% of its height (a
    # taller-looking chest), 2.7.0 calls 10% of the validation normals pneumonia (docs/training.md,
    # "Proportions and grain are not findings").
    stretch_probability: float = 0.0
    stretch_keep: tuple[float, float] = (0.7, 1.0)
    # Grain (off by default): with this probability an image of either class gets Gaussian noise of a
    # standard deviation drawn in grain_std, before it is equalised again, as a noisier detector's image
    # would be when served. noise_std above is added after equalisation and stays small; this is the
    # grain that equalisation spreads over the dark background. Without it 2.7.0 reads grain as
    # evidence: noise of std 0.04 on the served image moves its validation normals' mean p(pneumonia)
    # from 0.034 to 0.42 and its specificity at its threshold to 0.82 (docs/training.md, "Proportions
    # and grain are not findings").
    grain_probability: float = 0.0
    grain_std: tuple[float, float] = (0.0, 0.05)
    # Softening (off by default): with this probability an image of either class is resampled to a
    # side drawn in soften_side pixels (area averaging) and back (bilinear), then equalised again: the
    # same anatomy from a detector of lower resolution. Without it smoothness reads as "normal": at 112
    # pixels 2.7.0 and 2.9.0 lose 6 points of validation sensitivity (docs/training.md, "Sharpness is
    # not a finding").
    soften_probability: float = 0.0
    soften_side: tuple[int, int] = (96, 192)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        values = dict(data)
        for key in ("scale", "crop_scale", "reframe_scale", "stretch_keep", "grain_std", "soften_side"):
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


def _served(unit: torch.Tensor, equalized: bool) -> torch.Tensor:
    """A changed training image as serving would see it: equalised again when the input is equalised
    (equalisation depends only on pixel ranks, which the change moved)."""
    return torch.from_numpy(equalize(unit.numpy())) if equalized else unit


class Reframe:
    """With a probability for its class, crop an image to a random near-square area and resize it back:
    tight framing, for the class that otherwise rarely has it (normal: target 0; pneumonia: 1 and 2).

    An equalised input is equalised again after the crop: equalisation depends only on the ranks of
    the pixels, so this is what a radiograph framed that tight would have become when served."""

    def __init__(
        self, normal: float, pneumonia: float, scale: tuple[float, float], size: int, equalized: bool
    ) -> None:
        self.normal, self.pneumonia = normal, pneumonia
        self.crop = v2.RandomResizedCrop(size=(size, size), scale=scale, ratio=(0.9, 1.1), antialias=True)
        self.equalized = equalized

    def __call__(self, unit: torch.Tensor, target: int) -> torch.Tensor:
        probability = self.normal if target == 0 else self.pneumonia
        if probability <= 0 or torch.rand(()).item() >= probability:
            return unit
        return _served(self.crop(unit).clamp(0.0, 1.0), self.equalized)


def build_reframe(cfg: AugmentConfig, spec: PreprocessSpec) -> Reframe | None:
    """The class-aware first step of training augmentation, or None when the config has none."""
    if cfg.normal_reframe_probability <= 0 and cfg.pneumonia_reframe_probability <= 0:
        return None
    return Reframe(
        cfg.normal_reframe_probability,
        cfg.pneumonia_reframe_probability,
        cfg.reframe_scale,
        spec.size,
        spec.intensity == "equalize",
    )


class Stretch:
    """With a probability, keep a random share of one axis (width or height, equally often), at a random
    offset, and resize back: the same anatomy, other proportions. Both classes alike, so proportions
    stop telling them apart. An equalised input is equalised again after the crop (as Reframe)."""

    def __init__(self, probability: float, keep: tuple[float, float], equalized: bool) -> None:
        if not 0.0 < keep[0] <= keep[1] <= 1.0:
            raise ValueError(f"stretch_keep must be a range within (0, 1], not {keep}")
        self.probability, self.keep, self.equalized = probability, keep, equalized

    def __call__(self, unit: torch.Tensor) -> torch.Tensor:
        if torch.rand(()).item() >= self.probability:
            return unit
        keep = self.keep[0] + torch.rand(()).item() * (self.keep[1] - self.keep[0])
        _, height, width = unit.shape
        along_width = torch.rand(()).item() < 0.5
        length = width if along_width else height
        kept = max(1, round(length * keep))
        start = int(torch.randint(0, length - kept + 1, ()).item())
        part = unit[:, :, start : start + kept] if along_width else unit[:, start : start + kept, :]
        return _served(
            v2.functional.resize(part, [height, width], antialias=True).clamp(0.0, 1.0), self.equalized
        )


def build_stretch(cfg: AugmentConfig, spec: PreprocessSpec) -> Stretch | None:
    """The class-blind stretch of training augmentation, or None when the config has none."""
    if cfg.stretch_probability <= 0:
        return None
    return Stretch(cfg.stretch_probability, cfg.stretch_keep, spec.intensity == "equalize")


class Grain:
    """With a probability, Gaussian noise of a standard deviation drawn uniformly in a range, then (for
    an equalised input) equalisation again: what serving makes of a noisier acquisition. Both classes
    alike, so grain stops telling them apart."""

    def __init__(self, probability: float, std: tuple[float, float], equalized: bool) -> None:
        if not 0.0 <= std[0] <= std[1]:
            raise ValueError(f"grain_std must be a range of standard deviations, not {std}")
        self.probability, self.std, self.equalized = probability, std, equalized

    def __call__(self, unit: torch.Tensor) -> torch.Tensor:
        if torch.rand(()).item() >= self.probability:
            return unit
        std = self.std[0] + torch.rand(()).item() * (self.std[1] - self.std[0])
        return _served((unit + torch.randn_like(unit) * std).clamp(0.0, 1.0), self.equalized)


def build_grain(cfg: AugmentConfig, spec: PreprocessSpec) -> Grain | None:
    """The class-blind grain of training augmentation, or None when the config has none."""
    if cfg.grain_probability <= 0:
        return None
    return Grain(cfg.grain_probability, cfg.grain_std, spec.intensity == "equalize")


class Soften:
    """With a probability, resample a square image to a side drawn uniformly in a range (area
    averaging, which is what a coarser detector integrates) and back (bilinear), then (for an
    equalised input) equalise again. Both classes alike, so sharpness stops telling them apart."""

    def __init__(self, probability: float, side: tuple[int, int], equalized: bool) -> None:
        if not 8 <= side[0] <= side[1]:
            raise ValueError(f"soften_side must be a range of sides of at least 8 pixels, not {side}")
        self.probability, self.side, self.equalized = probability, side, equalized

    def __call__(self, unit: torch.Tensor) -> torch.Tensor:
        if torch.rand(()).item() >= self.probability:
            return unit
        _, height, width = unit.shape
        side = int(torch.randint(self.side[0], self.side[1] + 1, ()).item())
        if side >= max(height, width):
            return unit
        small = torch.nn.functional.interpolate(unit[None], size=(side, side), mode="area")
        back = torch.nn.functional.interpolate(
            small, size=(height, width), mode="bilinear", align_corners=False
        )
        return _served(back[0].clamp(0.0, 1.0), self.equalized)


def build_soften(cfg: AugmentConfig, spec: PreprocessSpec) -> Soften | None:
    """The class-blind softening of training augmentation, or None when the config has none."""
    if cfg.soften_probability <= 0:
        return None
    return Soften(cfg.soften_probability, cfg.soften_side, spec.intensity == "equalize")


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
        reframe: Reframe | None = None,
        stretch: Stretch | None = None,
        grain: Grain | None = None,
        soften: Soften | None = None,
    ) -> None:
        self.images = images
        self.reframe = reframe
        self.stretch = stretch
        self.grain = grain
        self.soften = soften
        self.targets = [class_index(r.label, r.subtype) for r in rows]
        self.spec = spec
        self.augment = augment
        self.mean = torch.tensor(spec.mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(spec.std, dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        unit = torch.from_numpy(self.images[index].astype(np.float32)).unsqueeze(0)
        if self.reframe is not None:
            unit = self.reframe(unit, self.targets[index])
        if self.stretch is not None:
            unit = self.stretch(unit)
        # softer first, then grain: a coarse detector can still be a noisy one
        if self.soften is not None:
            unit = self.soften(unit)
        if self.grain is not None:
            unit = self.grain(unit)
        if self.augment is not None:
            unit = self.augment(unit).clamp(0.0, 1.0)
        # Same arithmetic as imaging.preprocess.normalize, on tensors.
        image = (unit.expand(self.spec.channels, -1, -1) - self.mean) / self.std
        return image, self.targets[index]
