"""Calibration pieces on synthetic data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_pneumonia.training.calibration import (
    conformal_quantile,
    expected_calibration_error,
    fit_temperature,
    threshold_for_sensitivity,
)
from cxr_pneumonia.training.metrics import binary_report, wilson_ci


def _sample_logits(rng: np.random.Generator, n: int, true_t: float) -> tuple[np.ndarray, np.ndarray]:
    """Draw labels from softmax(z) and report logits z * true_t: the right temperature is true_t."""
    z = rng.normal(0, 2.0, size=(n, 3))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    targets = np.array([rng.choice(3, p=row) for row in p])
    return z * true_t, targets


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_the_true_temperature(true_t: float) -> None:
    logits, targets = _sample_logits(np.random.default_rng(0), 4000, true_t)
    assert fit_temperature(logits, targets) == pytest.approx(true_t, rel=0.1)


def test_threshold_meets_the_sensitivity_and_is_the_most_specific() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 1000), 0, 1)
    t, sens, spec = threshold_for_sensitivity(y, p, 0.95)
    assert sens >= 0.95
    assert ((p >= t) & (y == 1)).sum() / (y == 1).sum() == pytest.approx(sens)
    # any stricter threshold loses the sensitivity
    stricter = np.unique(p[p > t])[0] if (p > t).any() else None
    if stricter is not None:
        assert ((p >= stricter) & (y == 1)).sum() / (y == 1).sum() < 0.95
    assert 0 < spec < 1


def test_conformal_quantile_gives_the_promised_coverage_on_fresh_data() -> None:
    rng = np.random.default_rng(2)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        p = rng.uniform(0, 1, n)
        y = (rng.uniform(0, 1, n) < p).astype(int)
        return y, p

    y_cal, p_cal = draw(2000)
    q = conformal_quantile(y_cal, p_cal, alpha=0.1)
    y_new, p_new = draw(20000)
    p_true = np.where(y_new == 1, p_new, 1 - p_new)
    coverage = np.mean(1 - p_true <= q)
    assert coverage == pytest.approx(0.9, abs=0.02)


def test_ece_is_zero_for_perfect_calibration_and_large_for_overconfidence() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 200000)
    y = (rng.uniform(0, 1, p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.01
    overconfident = np.where(p > 0.5, 0.99, 0.01)
    assert expected_calibration_error(y, overconfident) > 0.2


def test_binary_report_counts() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.6, 0.1, 0.4, 0.7])
    r = binary_report(y, p, threshold=0.5)
    assert r["confusion"] == {"tp": 3, "fn": 1, "fp": 1, "tn": 3}
    assert r["sensitivity"] == pytest.approx(0.75)
    assert r["specificity"] == pytest.approx(0.75)
    low, high = wilson_ci(3, 4)
    assert r["sensitivity_ci95"] == pytest.approx([low, high])
    assert 0 < r["auroc_ci95"][0] <= r["auroc"] <= r["auroc_ci95"][1] <= 1
