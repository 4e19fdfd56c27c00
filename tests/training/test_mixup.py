"""Mixup: a batch blended with a shuffled copy of itself, scored against both labels."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="training needs the train extra (PyTorch)")

from cxr_pneumonia.training.config import TrainConfig  # noqa: E402
from cxr_pneumonia.training.loop import loss_fn, mixup, mixup_loss  # noqa: E402


def test_each_blended_image_is_its_own_and_its_partners_in_the_drawn_shares() -> None:
    torch.manual_seed(3)
    images = torch.rand(6, 3, 8, 8)
    blended, partner, lam = mixup(images, alpha=0.4)
    assert 0.0 <= lam <= 1.0
    assert sorted(partner.tolist()) == list(range(6))
    torch.testing.assert_close(blended, lam * images + (1 - lam) * images[partner])


def test_the_same_seed_blends_the_same_so_a_resumed_run_repeats_itself() -> None:
    images = torch.rand(5, 3, 4, 4)
    torch.manual_seed(11)
    first = mixup(images, alpha=0.2)
    torch.manual_seed(11)
    again = mixup(images, alpha=0.2)
    torch.testing.assert_close(first[0], again[0])
    assert first[1].tolist() == again[1].tolist() and first[2] == again[2]


def test_the_loss_weighs_both_labels_by_the_blend_including_unknown_subtypes() -> None:
    torch.manual_seed(5)
    logits = torch.randn(4, 3)
    targets = torch.tensor([0, 1, 2, -1])  # -1: pneumonia, subtype unknown
    partner = torch.tensor([3, 2, 1, 0])
    weights = torch.tensor([1.5, 0.8, 0.7])
    got = mixup_loss(logits, targets, partner, 0.3, weights, 0.1)
    want = 0.3 * loss_fn(logits, targets, weights, 0.1) + 0.7 * loss_fn(
        logits, targets[partner], weights, 0.1
    )
    torch.testing.assert_close(got, want)
    # lam 1 is the plain loss: mixup off in effect
    torch.testing.assert_close(
        mixup_loss(logits, targets, partner, 1.0, weights, 0.1), loss_fn(logits, targets, weights, 0.1)
    )


def test_mixup_is_off_by_default_and_read_from_the_config() -> None:
    assert TrainConfig().mixup_alpha == 0.0
    assert TrainConfig.from_dict({"mixup_alpha": 0.2}).mixup_alpha == 0.2
