"""The stronger augmentation set and the EMA of weights (configs/bundled-effnet-lite0-v2.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="training needs the train extra (PyTorch)")

from cxr_pneumonia.data.dataset import AugmentConfig, RandomGamma, build_augment  # noqa: E402
from cxr_pneumonia.models.network import CXRNet  # noqa: E402
from cxr_pneumonia.training.config import TrainConfig  # noqa: E402
from cxr_pneumonia.training.loop import (  # noqa: E402
    TrainState,
    evaluated_model,
    load_checkpoint,
    make_ema,
    save_checkpoint,
)

STRONG = AugmentConfig(crop_scale=(0.75, 1.0), gamma=0.3, blur_probability=0.5, noise_std=0.02)


def test_strong_augmentation_keeps_shape_and_changes_the_image() -> None:
    torch.manual_seed(0)
    unit = torch.rand(1, 64, 64)
    out = build_augment(STRONG, 64)(unit)
    assert out.shape == unit.shape
    assert not torch.allclose(out, unit)


def test_default_augmentation_has_none_of_the_strong_steps() -> None:
    names = [type(t).__name__ for t in build_augment(AugmentConfig(), 64).transforms]
    assert names == ["RandomAffine", "ColorJitter"]
    strong = [type(t).__name__ for t in build_augment(STRONG, 64).transforms]
    assert strong[0] == "RandomResizedCrop" and "RandomGamma" in strong and "AdditiveNoise" in strong


def test_gamma_is_monotone_and_keeps_the_ends() -> None:
    torch.manual_seed(1)
    ramp = torch.linspace(0, 1, 101).view(1, 1, -1)
    out = RandomGamma(0.3)(ramp)
    assert torch.all(out[..., 1:] >= out[..., :-1])
    assert out[..., 0].item() == 0.0 and out[..., -1].item() == pytest.approx(1.0)


def test_config_round_trips_the_new_keys(tmp_path: Path) -> None:
    cfg = TrainConfig(val_strategy="earliest", ema_decay=0.998, augment=STRONG)
    path = tmp_path / "c.yaml"
    cfg.write_yaml(path)
    assert TrainConfig.from_yaml(path) == cfg
    assert TrainConfig.from_yaml(Path("configs/bundled-effnet-lite0-v2.yaml")).ema_decay > 0


def _tiny_model() -> CXRNet:
    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    return CXRNet(backbone, channels=4, num_classes=3)


def test_ema_averages_and_survives_a_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = _tiny_model()
    ema = make_ema(model, 0.9)
    assert ema is not None and make_ema(model, 0.0) is None
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(5):
        logits, _ = model(torch.rand(2, 3, 8, 8))
        logits.sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        ema.update_parameters(model)
    averaged, live = evaluated_model(model, ema).head.weight, model.head.weight
    assert not torch.allclose(averaged, live)  # the average lags the live weights
    save_checkpoint(tmp_path / "last.pt", model, optimizer, TrainState(epoch=1), ema)

    fresh = _tiny_model()
    fresh_ema = make_ema(fresh, 0.9)
    assert fresh_ema is not None
    load_checkpoint(tmp_path / "last.pt", fresh, torch.optim.SGD(fresh.parameters(), lr=0.5), fresh_ema)
    assert torch.equal(fresh_ema.module.head.weight, averaged)
    assert torch.equal(fresh.head.weight, live)
