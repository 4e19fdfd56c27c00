"""The shared statistics: one ECE and one Wilson interval for evaluate, the monitor and the registry."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_pneumonia.monitoring.performance import expected_calibration_error as monitor_ece
from cxr_pneumonia.stats import calibration_bins, expected_calibration_error, wilson_ci
from cxr_pneumonia.training.calibration import expected_calibration_error as evaluate_ece


def test_ece_is_the_count_weighted_gap_per_bin() -> None:
    # 4 cases at p=0.8 of which 2 are pneumonia (gap 0.3), 6 at p=0.1 of which none is (gap 0.1)
    p = np.array([0.8] * 4 + [0.1] * 6)
    truth = np.array([1, 1, 0, 0] + [0] * 6)
    assert expected_calibration_error(truth, p, bins=10) == pytest.approx((4 * 0.3 + 6 * 0.1) / 10)


def test_a_probability_on_an_edge_falls_in_the_bin_it_closes() -> None:
    bins = calibration_bins(np.array([1.0, 0.0]), np.array([0.5, 0.0]), bins=10)
    assert [(b.lo, b.hi, b.count) for b in bins] == [(0.0, 0.1, 1), (0.4, 0.5, 1)]


def test_evaluate_and_the_monitor_agree_at_the_same_bin_count() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(size=500)
    # miscalibrated both ways (the gap changes sign across p), so the bin count changes the ECE
    truth = (rng.uniform(size=500) < np.clip(p + 0.2 * np.sin(6 * np.pi * p), 0, 1)).astype(float)
    assert evaluate_ece(truth, p, bins=10) == pytest.approx(monitor_ece(p, truth, bins=10))
    assert evaluate_ece(truth, p) != pytest.approx(monitor_ece(p, truth))  # 15 bins against 10 by default


def test_wilson_stays_inside_zero_one() -> None:
    for successes, total in [(0, 1), (1, 1), (0, 500), (500, 500)]:
        low, high = wilson_ci(successes, total)
        assert 0.0 <= low <= successes / total <= high <= 1.0
