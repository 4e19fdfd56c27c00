"""Small statistics shared by training (evaluation), monitoring (reviewed cases) and the registry
(agreement reports): one definition each, so a card's figure and a dashboard's mean the same thing."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def wilson_ci(successes: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion."""
    if total == 0:
        return float("nan"), float("nan")
    p = successes / total
    denom = 1 + z**2 / total
    centre = (p + z**2 / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z**2 / (4 * total**2)) / denom
    low = 0.0 if successes == 0 else float(centre - half)  # exactly 0 and 1 at the ends, not 4e-19 off
    high = 1.0 if successes == total else float(centre + half)
    return low, high


@dataclass(frozen=True)
class CalibrationBin:
    """One equal-width bin (lo, hi] of predicted p(pneumonia): how many, the mean p, the observed rate."""

    lo: float
    hi: float
    count: int
    mean_predicted: float
    observed: float


def calibration_bins(truth: np.ndarray, p_positive: np.ndarray, bins: int) -> list[CalibrationBin]:
    """The non-empty bins of a reliability diagram."""
    truth = np.asarray(truth, dtype=np.float64)
    p = np.asarray(p_positive, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=True), 0, bins - 1)
    found = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            found.append(
                CalibrationBin(
                    float(edges[b]),
                    float(edges[b + 1]),
                    int(mask.sum()),
                    float(p[mask].mean()),
                    float(truth[mask].mean()),
                )
            )
    return found


def expected_calibration_error(truth: np.ndarray, p_positive: np.ndarray, bins: int) -> float:
    """Binary ECE of p(pneumonia): the count-weighted gap between mean p and observed rate per bin."""
    found = calibration_bins(truth, p_positive, bins)
    total = sum(b.count for b in found)
    return sum(b.count * abs(b.mean_predicted - b.observed) for b in found) / max(1, total)
