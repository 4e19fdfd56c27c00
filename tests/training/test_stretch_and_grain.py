"""Stretch and grain (augment.stretch_*, grain_*): a chest's proportions and an image's noise stop telling
the classes apart."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the train extra (PyTorch)")

from cxr_pneumonia.data.dataset import AugmentConfig, XRayTensorDataset, build_grain, build_stretch  # noqa: E402
from cxr_pneumonia.imaging.preprocess import PreprocessSpec, equalize  # noqa: E402
from cxr_pneumonia.training.config import TrainConfig  # noqa: E402

SPEC = PreprocessSpec(size=64, intensity="equalize")


def _box() -> torch.Tensor:
    """A bright square 'chest' of side 32 in the middle of a dark 64 x 64 image."""
    unit = torch.zeros((1, 64, 64))
    unit[:, 16:48, 16:48] = 0.8
    return unit


def _extent(unit: torch.Tensor, axis: int) -> int:
    """How many rows (axis 1) or columns (axis 2) hold any of the bright square."""
    return int((unit[0] > 0.4).any(dim=2 - axis).sum().item())


def test_no_stretch_unless_configured() -> None:
    assert build_stretch(AugmentConfig(), SPEC) is None


def test_a_stretch_widens_or_heightens_and_never_both() -> None:
    stretcher = build_stretch(AugmentConfig(stretch_probability=1.0, stretch_keep=(0.7, 0.75)), SPEC)
    assert stretcher is not None
    stretcher.equalized = False  # keep the square's level to measure its extent
    torch.manual_seed(0)
    axes = set()
    for _ in range(40):
        out = stretcher(_box())
        assert out.shape == (1, 64, 64)
        rows, columns = _extent(out, 1), _extent(out, 2)
        # a 32-pixel side kept at 70-75% of the axis comes back 42-46 pixels long; the other stays 32
        assert sorted((rows, columns))[0] == 32 and 41 <= max(rows, columns) <= 47
        axes.add("height" if rows > columns else "width")
    assert axes == {"height", "width"}


def test_the_probability_is_the_share_stretched_for_either_class() -> None:
    stretcher = build_stretch(AugmentConfig(stretch_probability=0.5), PreprocessSpec(size=64))
    assert stretcher is not None
    torch.manual_seed(5)
    changed = sum(not torch.equal(stretcher(_box()), _box()) for _ in range(400))
    assert 160 < changed < 240


def test_a_stretched_equalised_input_is_equalised_again() -> None:
    equalising = build_stretch(AugmentConfig(stretch_probability=1.0), SPEC)
    plain = build_stretch(AugmentConfig(stretch_probability=1.0), PreprocessSpec(size=64))
    assert equalising is not None and plain is not None
    image = torch.from_numpy(equalize(_box().numpy() + torch.rand((1, 64, 64)).numpy() * 0.1))
    torch.manual_seed(3)
    out = equalising(image).numpy()
    torch.manual_seed(3)
    np.testing.assert_allclose(out, equalize(plain(image).numpy()), atol=1e-6)
    assert out.min() == 0.0 and out.max() == pytest.approx(1.0)


def test_a_bad_range_is_refused() -> None:
    with pytest.raises(ValueError, match="stretch_keep"):
        build_stretch(AugmentConfig(stretch_probability=1.0, stretch_keep=(0.0, 0.5)), SPEC)


def test_the_training_dataset_applies_it() -> None:
    images = np.stack([_box()[0].numpy()] * 2).astype(np.float16)

    class Row:
        label, subtype = "normal", None

    stretcher = build_stretch(
        AugmentConfig(stretch_probability=1.0, stretch_keep=(0.7, 0.7)), PreprocessSpec(size=64)
    )
    dataset = XRayTensorDataset(images, [Row(), Row()], PreprocessSpec(size=64), stretch=stretcher)  # type: ignore[list-item]
    plain = XRayTensorDataset(images, [Row(), Row()], PreprocessSpec(size=64))  # type: ignore[list-item]
    assert not torch.equal(dataset[0][0], plain[0][0])


def test_the_config_reads_them() -> None:
    augment = {
        "stretch_probability": 0.5,
        "stretch_keep": [0.7, 1.0],
        "grain_probability": 0.5,
        "grain_std": [0, 0.05],
    }
    cfg = TrainConfig.from_dict({"augment": augment})
    assert cfg.augment.stretch_probability == 0.5 and cfg.augment.stretch_keep == (0.7, 1.0)
    assert cfg.augment.grain_probability == 0.5 and cfg.augment.grain_std == (0, 0.05)


def test_no_grain_unless_configured() -> None:
    assert build_grain(AugmentConfig(), SPEC) is None


def test_grain_adds_noise_of_the_drawn_strength() -> None:
    grainer = build_grain(
        AugmentConfig(grain_probability=1.0, grain_std=(0.05, 0.05)), PreprocessSpec(size=64)
    )
    assert grainer is not None
    torch.manual_seed(2)
    flat = torch.full((1, 64, 64), 0.5)
    out = grainer(flat)
    assert out.shape == flat.shape
    assert float((out - flat).std()) == pytest.approx(0.05, rel=0.1)


def test_grain_is_applied_at_its_probability_and_equalised_again() -> None:
    grainer = build_grain(AugmentConfig(grain_probability=0.5, grain_std=(0.02, 0.05)), SPEC)
    plain = build_grain(AugmentConfig(grain_probability=0.5, grain_std=(0.02, 0.05)), PreprocessSpec(size=64))
    assert grainer is not None and plain is not None
    image = torch.from_numpy(equalize(_box().numpy() + torch.rand((1, 64, 64)).numpy() * 0.1))
    torch.manual_seed(4)
    changed = sum(not torch.equal(grainer(image), image) for _ in range(400))
    assert 160 < changed < 240
    for seed in range(20):
        torch.manual_seed(seed)
        out = grainer(image)
        torch.manual_seed(seed)
        np.testing.assert_allclose(out.numpy(), equalize(plain(image).numpy()), atol=1e-6)


def test_a_bad_grain_range_is_refused() -> None:
    with pytest.raises(ValueError, match="grain_std"):
        build_grain(AugmentConfig(grain_probability=1.0, grain_std=(0.05, 0.01)), SPEC)
