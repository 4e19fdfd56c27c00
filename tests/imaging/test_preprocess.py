"""The preprocessing spec a package records, and the intensity transform serving and training share."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_pneumonia.errors import ModelError
from cxr_pneumonia.imaging.preprocess import PreprocessSpec, equalize, resize_unit


def _radiograph_like(shape: tuple[int, int] = (300, 260), seed: int = 0) -> np.ndarray:
    """A smooth bright-centre image with noise: many grey levels, like a radiograph's."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    centre = np.exp(-(((yy - shape[0] / 2) / shape[0]) ** 2 + ((xx - shape[1] / 2) / shape[1]) ** 2) * 4)
    return np.clip(0.15 + 0.7 * centre + rng.normal(0, 0.03, shape), 0, 1).astype(np.float32)


def test_a_plain_spec_keeps_the_version_1_layout() -> None:
    spec = PreprocessSpec(size=224)
    data = spec.to_dict()
    assert data["version"] == "1"
    assert "intensity" not in data  # packages written before the transform existed read and hash as before
    assert PreprocessSpec.from_dict(data) == spec


def test_an_equalising_spec_is_version_2_and_round_trips() -> None:
    spec = PreprocessSpec(size=224, intensity="equalize")
    data = spec.to_dict()
    assert (data["version"], data["intensity"]) == ("2", "equalize")
    assert PreprocessSpec.from_dict(data) == spec


@pytest.mark.parametrize(
    ("version", "intensity", "words"),
    [
        ("1", "equalize", "does not go with"),
        ("2", "none", "does not go with"),
        ("2", "clahe", "not supported"),
        ("3", "equalize", "not one this code reads"),
    ],
)
def test_a_spec_this_code_cannot_honour_is_refused(version: str, intensity: str, words: str) -> None:
    data = PreprocessSpec(size=224, intensity="equalize").to_dict() | {
        "version": version,
        "intensity": intensity,
    }
    with pytest.raises(ModelError, match=words):
        PreprocessSpec.from_dict(data)


def test_equalisation_spreads_the_levels_and_keeps_their_order() -> None:
    unit = _radiograph_like()
    out = equalize(unit)
    assert out.dtype == np.float32 and out.shape == unit.shape
    assert out.min() == 0.0 and out.max() == 1.0
    # monotone: a brighter pixel never ends darker
    order = np.argsort(unit.ravel(), kind="stable")
    assert np.all(np.diff(out.ravel()[order]) >= -1e-7)
    # about uniform: each quarter of the range holds about a quarter of the pixels
    shares = np.histogram(out, bins=4, range=(0, 1))[0] / out.size
    assert np.all(np.abs(shares - 0.25) < 0.03), shares


def test_another_exposure_of_the_same_image_equalises_to_nearly_the_same_input() -> None:
    """What the transform is for: the same anatomy under another exposure or contrast curve."""
    unit = _radiograph_like()
    darker = np.clip(0.05 + 0.6 * unit**1.6, 0, 1).astype(np.float32)
    raw_gap = float(np.mean(np.abs(unit - darker)))
    equalised_gap = float(np.mean(np.abs(equalize(unit) - equalize(darker))))
    assert raw_gap > 0.15
    assert equalised_gap < 0.01, (raw_gap, equalised_gap)


def test_a_flat_image_stays_flat() -> None:
    flat = np.full((32, 32), 0.4, dtype=np.float32)
    assert np.array_equal(equalize(flat), flat)


@pytest.mark.parametrize("shape", [(224, 224), (300, 260)])
def test_serving_applies_the_specs_transform_whatever_the_size(shape: tuple[int, int]) -> None:
    """An image already at the model's size skips the resize, not the transform."""
    pixels = _radiograph_like(shape)
    plain, equalising = PreprocessSpec(size=224), PreprocessSpec(size=224, intensity="equalize")
    assert np.array_equal(resize_unit(pixels, equalising), equalize(resize_unit(pixels, plain)))
    assert not np.allclose(resize_unit(pixels, plain), resize_unit(pixels, equalising), atol=0.05)
