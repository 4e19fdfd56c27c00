"""The refusal distance: a factor of the atypical one, or a percentile of another population's radiographs."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_pneumonia.package import OODReference
from cxr_pneumonia.training.ood import fit_ood_reference, refuse_threshold


def _reference_and_outliers() -> tuple[OODReference, np.ndarray]:
    rng = np.random.default_rng(0)
    inside = rng.normal(0.0, 1.0, (400, 8))
    outliers = rng.normal(0.0, 1.0, (200, 8)) + np.linspace(0.0, 6.0, 200)[:, None]  # near to far
    return fit_ood_reference(inside), outliers


def test_without_outliers_the_factor_decides() -> None:
    reference, _ = _reference_and_outliers()
    assert refuse_threshold(reference, 10.0, None, factor=1.6, outlier_percentile=99.0) == pytest.approx(16.0)
    assert refuse_threshold(reference, 10.0, np.empty((0, 8)), factor=1.6, outlier_percentile=99.0) == (
        pytest.approx(16.0)
    )


def test_the_outliers_percentile_decides_when_asked() -> None:
    reference, outliers = _reference_and_outliers()
    distances = reference.distance(outliers)
    refuse = refuse_threshold(reference, 1.0, outliers, factor=1.6, outlier_percentile=99.0)
    assert refuse == pytest.approx(float(np.percentile(distances, 99.0)))
    assert np.mean(distances > refuse) == pytest.approx(
        0.01, abs=0.006
    )  # 1% of them refused, the rest answered
    # ... never below the atypical distance: what is refused was first atypical
    assert refuse_threshold(reference, 1e6, outliers, factor=1.6, outlier_percentile=99.0) == 1e6
    # ... and off at 0, whatever outliers are given
    assert refuse_threshold(reference, 1.0, outliers, factor=1.6, outlier_percentile=0.0) == pytest.approx(
        1.6
    )
