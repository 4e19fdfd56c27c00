"""Reframing (augment.*_reframe_probability): tight framing stops predicting the class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the train extra (PyTorch)")

from cxr_pneumonia.data.dataset import AugmentConfig, XRayTensorDataset, build_reframe  # noqa: E402
from cxr_pneumonia.data.labels import BACTERIAL, NORMAL, PNEUMONIA  # noqa: E402
from cxr_pneumonia.imaging.preprocess import PreprocessSpec, equalize  # noqa: E402
from cxr_pneumonia.training.config import TrainConfig  # noqa: E402

SPEC = PreprocessSpec(size=64, intensity="equalize")


def _framed_chest() -> torch.Tensor:
    """A bright 'body' in the middle, a dark background band on each side (as untight framing has)."""
    unit = torch.full((1, 64, 64), 0.0)
    unit[:, :, 12:52] = torch.linspace(0.3, 0.9, 40).view(1, 1, 40)
    return unit


def test_no_reframing_unless_configured() -> None:
    assert build_reframe(AugmentConfig(), SPEC) is None


def test_only_normals_are_reframed() -> None:
    reframe = build_reframe(AugmentConfig(normal_reframe_probability=1.0, reframe_scale=(0.3, 0.4)), SPEC)
    assert reframe is not None
    unit = _framed_chest()
    for target in (1, 2):
        assert torch.equal(reframe(unit, target), unit)
    torch.manual_seed(0)
    framed = [reframe(unit, 0) for _ in range(50)]
    assert all(f.shape == unit.shape for f in framed)
    # crops of at most 40% of the area, resized back, leave on average far less dark background
    dark = float(np.mean([(f < 0.05).float().mean().item() for f in framed]))
    assert dark < 0.6 * (unit < 0.05).float().mean().item()


def test_pneumonia_is_reframed_at_its_own_probability() -> None:
    cfg = AugmentConfig(pneumonia_reframe_probability=1.0, reframe_scale=(0.3, 0.4))
    reframe = build_reframe(cfg, SPEC)
    assert reframe is not None
    unit = _framed_chest()
    assert torch.equal(reframe(unit, 0), unit)  # normals: probability 0
    torch.manual_seed(1)
    for target in (1, 2):
        assert not torch.equal(reframe(unit, target), unit)


def test_reframed_equalised_input_is_equalised_again() -> None:
    reframe = build_reframe(AugmentConfig(normal_reframe_probability=1.0), SPEC)
    assert reframe is not None
    torch.manual_seed(3)
    framed = reframe(torch.from_numpy(equalize(_framed_chest().numpy())), 0).numpy()
    np.testing.assert_allclose(framed, equalize(framed), atol=1e-6)
    assert framed.min() == 0.0 and framed.max() == pytest.approx(1.0)


def test_the_probability_is_the_share_of_normals_reframed() -> None:
    reframe = build_reframe(AugmentConfig(normal_reframe_probability=0.5), PreprocessSpec(size=64))
    assert reframe is not None
    torch.manual_seed(5)
    unit = _framed_chest()
    changed = sum(not torch.equal(reframe(unit, 0), unit) for _ in range(400))
    assert 160 < changed < 240


def test_the_training_dataset_applies_it_by_target() -> None:
    images = np.stack([_framed_chest()[0].numpy()] * 2).astype(np.float16)

    class Row:
        def __init__(self, label: str, subtype: str | None) -> None:
            self.label, self.subtype = label, subtype

    rows = [Row(NORMAL, None), Row(PNEUMONIA, BACTERIAL)]
    reframe = build_reframe(AugmentConfig(normal_reframe_probability=1.0), SPEC)
    dataset = XRayTensorDataset(images, rows, SPEC, reframe=reframe)  # type: ignore[arg-type]
    plain = XRayTensorDataset(images, rows, SPEC)  # type: ignore[arg-type]
    torch.manual_seed(0)
    assert not torch.equal(dataset[0][0], plain[0][0])
    assert torch.equal(dataset[1][0], plain[1][0])


def test_config_round_trips_the_reframe_keys(tmp_path: Path) -> None:
    augment = AugmentConfig(
        normal_reframe_probability=0.5, pneumonia_reframe_probability=0.25, reframe_scale=(0.5, 0.8)
    )
    cfg = TrainConfig(augment=augment)
    path = tmp_path / "c.yaml"
    cfg.write_yaml(path)
    assert TrainConfig.from_yaml(path) == cfg
