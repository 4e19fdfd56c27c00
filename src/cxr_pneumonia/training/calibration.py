"""Post-hoc calibration fitted on validation only: temperature, threshold, conformal quantile."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from .. import stats


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def p_pneumonia(probs: np.ndarray) -> np.ndarray:
    """Classes are (normal, bacterial, viral): p_pneumonia = p_bacterial + p_viral."""
    return 1.0 - probs[:, 0]


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the 3-class targets (-1: pneumonia of unknown subtype)."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    known = targets >= 0
    terms = np.empty(len(targets))
    terms[known] = -logp[known, targets[known]]
    # unknown subtype: the likelihood of "pneumonia" is the sum over both pneumonia classes
    terms[~known] = -np.logaddexp(logp[~known, 1], logp[~known, 2])
    return float(terms.mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises validation NLL (searched on log scale)."""
    result = minimize_scalar(
        lambda log_t: nll(logits, targets, math.exp(log_t)), bounds=(-3.0, 3.0), method="bounded"
    )
    return float(math.exp(result.x))


ECE_BINS = 15  # evaluate's ECE and reliability diagram (the monitor's reviewed cases use 10)


def expected_calibration_error(y_true: np.ndarray, p_positive: np.ndarray, bins: int = ECE_BINS) -> float:
    """Binary ECE of p_pneumonia with equal-width bins."""
    return stats.expected_calibration_error(y_true, p_positive, bins)


def reliability_bins(
    y_true: np.ndarray, p_positive: np.ndarray, bins: int = ECE_BINS
) -> list[dict[str, float]]:
    return [
        {"lo": b.lo, "hi": b.hi, "count": b.count, "confidence": b.mean_predicted, "frequency": b.observed}
        for b in stats.calibration_bins(y_true, p_positive, bins)
    ]


def threshold_for_sensitivity(
    y_true: np.ndarray, p_positive: np.ndarray, min_sensitivity: float = 0.95
) -> tuple[float, float, float]:
    """Highest-specificity threshold whose sensitivity is at least ``min_sensitivity``.

    Returns (threshold, sensitivity, specificity) on the data given (validation).
    """
    y_true = np.asarray(y_true).astype(bool)
    p = np.asarray(p_positive, dtype=np.float64)
    candidates = np.unique(p)[::-1]  # from strict to lenient
    best: tuple[float, float, float] | None = None
    for t in candidates:
        pred = p >= t
        sens = float((pred & y_true).sum() / max(y_true.sum(), 1))
        spec = float((~pred & ~y_true).sum() / max((~y_true).sum(), 1))
        if sens >= min_sensitivity and (best is None or spec > best[2]):
            best = (float(t), sens, spec)
            break  # thresholds are descending: the first that reaches the sensitivity has the best specificity
    if best is None:
        return float(candidates[-1]), 1.0, 0.0
    return best


def conformal_quantile(y_binary: np.ndarray, p_positive: np.ndarray, alpha: float = 0.05) -> float:
    """Split-conformal quantile of the score s = 1 - p(true class) for 1 - alpha coverage."""
    p_true = np.where(np.asarray(y_binary) == 1, p_positive, 1.0 - np.asarray(p_positive))
    scores = np.sort(1.0 - p_true)
    n = len(scores)
    rank = math.ceil((n + 1) * (1.0 - alpha))
    if rank > n:
        return 1.0
    return float(scores[rank - 1])


def mondrian_quantiles(y_binary: np.ndarray, p_positive: np.ndarray, alpha: float = 0.05) -> dict[str, float]:
    """Class-conditional (Mondrian) split-conformal quantiles: each class's quantile is fitted on the
    validation cases of that class alone, so each class is covered at 1 - alpha on its own. A marginal
    quantile lets the easy majority class (pneumonia here) carry the coverage while the other falls
    short, which is what happened on the test split when the population moved."""
    y = np.asarray(y_binary)
    p = np.asarray(p_positive, dtype=np.float64)
    return {
        "normal": conformal_quantile(y[y == 0], p[y == 0], alpha),
        "pneumonia": conformal_quantile(y[y == 1], p[y == 1], alpha),
    }


def prediction_set(p_positive: float, quantile: float) -> tuple[bool, bool]:
    """(normal in the set, pneumonia in the set) for one calibrated p_pneumonia."""
    return (p_positive <= quantile, 1.0 - p_positive <= quantile)


@dataclass(frozen=True)
class DecisionRule:
    """What is fitted on labelled cases after training (validation) or at a site (recalibration)."""

    temperature: float
    threshold: float
    sensitivity: float  # at the threshold, on the cases it was fitted on
    specificity: float
    conformal_quantile: float  # marginal
    conformal_quantiles: dict[str, float] | None  # Mondrian, when asked for
    ece_before: float  # of the uncalibrated probabilities
    ece_after: float


def fit_decision_rule(
    logits: np.ndarray,
    targets: np.ndarray,
    min_sensitivity: float,
    alpha: float,
    mondrian: bool,
) -> DecisionRule:
    """Temperature (NLL), the highest-specificity threshold at ``min_sensitivity``, and the conformal
    quantile(s), all on the same labelled cases. ``targets``: 0 normal, 1 bacterial, 2 viral, -1
    pneumonia of unknown subtype."""
    y = (np.asarray(targets) != 0).astype(int)
    temperature = fit_temperature(logits, targets)
    p_raw = p_pneumonia(probabilities(logits))
    p_cal = p_pneumonia(probabilities(logits, temperature))
    threshold, sens, spec = threshold_for_sensitivity(y, p_cal, min_sensitivity)
    return DecisionRule(
        temperature=temperature,
        threshold=threshold,
        sensitivity=sens,
        specificity=spec,
        conformal_quantile=conformal_quantile(y, p_cal, alpha),
        conformal_quantiles=mondrian_quantiles(y, p_cal, alpha) if mondrian else None,
        ece_before=expected_calibration_error(y, p_raw),
        ece_after=expected_calibration_error(y, p_cal),
    )
