"""Classification metrics for a binary pneumonia decision and the bacterial/viral subtype."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from ..stats import wilson_ci  # shared with the registry's agreement reports


def auroc(y_true: np.ndarray, score: np.ndarray) -> float:
    y_true = np.asarray(y_true)
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, score))


def bootstrap_auroc_ci(
    y_true: np.ndarray, score: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of AUROC (resampling images with replacement)."""
    rng = np.random.default_rng(seed)
    y_true, score = np.asarray(y_true), np.asarray(score)
    n = len(y_true)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if len(np.unique(y_true[idx])) < 2:
            continue
        values.append(roc_auc_score(y_true[idx], score[idx]))
    if not values:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


def binary_report(y_true: np.ndarray, p_positive: np.ndarray, threshold: float) -> dict[str, Any]:
    """Threshold metrics with Wilson CIs, confusion matrix, and AUROC with a bootstrap CI."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = (np.asarray(p_positive) >= threshold).astype(int)
    tp = int(((y_pred == 1) & (y_true == 1)).sum())
    tn = int(((y_pred == 0) & (y_true == 0)).sum())
    fp = int(((y_pred == 1) & (y_true == 0)).sum())
    fn = int(((y_pred == 0) & (y_true == 1)).sum())

    def ratio(num: int, den: int) -> float:
        return num / den if den else float("nan")

    sens, spec = ratio(tp, tp + fn), ratio(tn, tn + fp)
    ppv, npv = ratio(tp, tp + fp), ratio(tn, tn + fn)
    f1 = 2 * ppv * sens / (ppv + sens) if (ppv + sens) > 0 else float("nan")
    ci_low, ci_high = bootstrap_auroc_ci(y_true, p_positive)
    return {
        "n": len(y_true),
        "threshold": threshold,
        "auroc": auroc(y_true, p_positive),
        "auroc_ci95": [ci_low, ci_high],
        "accuracy": ratio(tp + tn, len(y_true)),
        "accuracy_ci95": list(wilson_ci(tp + tn, len(y_true))),
        "sensitivity": sens,
        "sensitivity_ci95": list(wilson_ci(tp, tp + fn)),
        "specificity": spec,
        "specificity_ci95": list(wilson_ci(tn, tn + fp)),
        "ppv": ppv,
        "npv": npv,
        "f1": f1,
        "confusion": {"tp": tp, "fn": fn, "fp": fp, "tn": tn},
    }


def roc_points(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fpr, tpr, thresholds = roc_curve(np.asarray(y_true), np.asarray(score))
    return fpr, tpr, thresholds


def brier(y_true: np.ndarray, p_positive: np.ndarray) -> float:
    return float(np.mean((np.asarray(p_positive) - np.asarray(y_true)) ** 2))
