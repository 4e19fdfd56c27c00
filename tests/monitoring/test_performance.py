"""Reviewed performance: Wilson intervals, ECE, the minimum number of reviews, the newest review wins."""

from __future__ import annotations

import pytest

from cxr_pneumonia.monitoring.performance import expected_calibration_error, performance, wilson


def test_wilson_matches_the_textbook_values() -> None:
    low, high = wilson(8, 10)  # type: ignore[misc]
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) is None
    low, high = wilson(0, 20)  # type: ignore[misc]
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)


def test_performance_needs_min_reviews_then_reports_each_rate() -> None:
    cases = [("pneumonia", 0.9, True)] * 6 + [("normal", 0.2, True)] * 2 + [("normal", 0.1, False)] * 3
    cases += [("pneumonia", 0.7, False)]
    assert performance(cases, min_reviews=20) == {"n": 12, "min_reviews": 20, "reported": False}
    out = performance(cases, min_reviews=10)
    assert out["confusion"] == {"tp": 6, "fp": 1, "tn": 3, "fn": 2}
    assert out["sensitivity"]["value"] == pytest.approx(6 / 8)
    assert out["specificity"]["value"] == pytest.approx(3 / 4)
    assert out["ppv"]["value"] == pytest.approx(6 / 7)
    assert out["sensitivity"]["ci95"] == pytest.approx(wilson(6, 8))


def test_ece_is_zero_when_calibrated_and_large_when_not() -> None:
    import numpy as np

    p = np.array([0.25] * 4 + [0.75] * 4)
    truth = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=np.float64)
    assert expected_calibration_error(p, truth) == pytest.approx(0.0)
    assert expected_calibration_error(np.full(4, 0.95), np.zeros(4)) == pytest.approx(0.95)
