"""Softening (augment.soften_*): sharpness stops telling the classes apart."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the train extra (PyTorch)")

from cxr_pneumonia.data.dataset import AugmentConfig, XRayTensorDataset, build_soften  # noqa: E402
from cxr_pneumonia.imaging.preprocess import PreprocessSpec, equalize  # noqa: E402
from cxr_pneumonia.training.config import TrainConfig  # noqa: E402

SPEC = PreprocessSpec(size=64, intensity="equalize")


def _checkerboard() -> torch.Tensor:
    """Fine detail only: one-pixel squares alternating 0.2 and 0.8."""
    rows, columns = np.indices((64, 64))
    return torch.from_numpy(np.where((rows + columns) % 2 == 0, 0.8, 0.2).astype(np.float32))[None]


def _edges(unit: torch.Tensor) -> float:
    """Mean absolute difference between horizontal neighbours: how sharp the image is."""
    return float((unit[..., 1:] - unit[..., :-1]).abs().mean())


def test_no_softening_unless_configured() -> None:
    assert build_soften(AugmentConfig(), SPEC) is None


def test_softening_removes_detail_finer_than_the_drawn_side() -> None:
    softener = build_soften(
        AugmentConfig(soften_probability=1.0, soften_side=(32, 32)), PreprocessSpec(size=64)
    )
    assert softener is not None
    board = _checkerboard()
    out = softener(board)
    assert out.shape == board.shape
    # averaging 2 x 2 blocks of a one-pixel checkerboard leaves its mean, 0.5, and no edges
    assert _edges(board) == pytest.approx(0.6)
    assert _edges(out) < 0.01
    assert float(out.mean()) == pytest.approx(0.5, abs=1e-4)


def test_a_side_at_least_the_image_leaves_it_alone() -> None:
    softener = build_soften(
        AugmentConfig(soften_probability=1.0, soften_side=(64, 80)), PreprocessSpec(size=64)
    )
    assert softener is not None
    board = _checkerboard()
    assert torch.equal(softener(board), board)


def test_it_is_applied_at_its_probability_and_equalised_again() -> None:
    softener = build_soften(AugmentConfig(soften_probability=0.5, soften_side=(16, 40)), SPEC)
    plain = build_soften(AugmentConfig(soften_probability=0.5, soften_side=(16, 40)), PreprocessSpec(size=64))
    assert softener is not None and plain is not None
    image = torch.from_numpy(equalize(torch.rand((1, 64, 64)).numpy()))
    torch.manual_seed(4)
    changed = sum(not torch.equal(softener(image), image) for _ in range(400))
    assert 160 < changed < 240
    for seed in range(20):
        torch.manual_seed(seed)
        out = softener(image)
        torch.manual_seed(seed)
        unequalised = plain(image)
        if torch.equal(unequalised, image):  # not drawn this time: left exactly as it was
            assert torch.equal(out, image)
        else:
            np.testing.assert_allclose(out.numpy(), equalize(unequalised.numpy()), atol=1e-6)


def test_a_bad_range_is_refused() -> None:
    with pytest.raises(ValueError, match="soften_side"):
        build_soften(AugmentConfig(soften_probability=1.0, soften_side=(40, 20)), SPEC)
    with pytest.raises(ValueError, match="soften_side"):
        build_soften(AugmentConfig(soften_probability=1.0, soften_side=(4, 20)), SPEC)


def test_the_training_dataset_applies_it_and_the_config_reads_it() -> None:
    cfg = TrainConfig.from_dict({"augment": {"soften_probability": 1.0, "soften_side": [32, 32]}})
    assert cfg.augment.soften_probability == 1.0 and cfg.augment.soften_side == (32, 32)

    class Row:
        label, subtype = "normal", None

    spec = PreprocessSpec(size=64)
    images = np.stack([_checkerboard()[0].numpy()] * 2).astype(np.float16)
    softened = XRayTensorDataset(images, [Row(), Row()], spec, soften=build_soften(cfg.augment, spec))  # type: ignore[list-item]
    plain = XRayTensorDataset(images, [Row(), Row()], spec)  # type: ignore[list-item]
    assert _edges(softened[0][0]) < 0.1 * _edges(plain[0][0])
