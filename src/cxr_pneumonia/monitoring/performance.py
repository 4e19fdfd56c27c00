"""Performance from clinician reviews: rolling sensitivity, specificity, PPV and ECE with Wilson
intervals, per model version, over the newest reviewed predictions (the newest review of each
prediction is its truth). Nothing is reported below ``min_reviews`` reviewed cases: a handful of
reviews says little, and an early number is read as a fact.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select

from .. import stats
from ..stats import wilson_ci
from ..store.db.models import PredictionRecord, Review
from ..store.facade import Store

Z95 = 1.959963984540054
ECE_BINS = 10


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (sound at small n and near 0 or 1); None when n = 0."""
    return None if n == 0 else wilson_ci(successes, n, z)


def _proportion(successes: int, n: int) -> dict[str, Any] | None:
    if n == 0:
        return None
    return {"value": successes / n, "ci95": wilson(successes, n), "n": n}


def expected_calibration_error(p: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS) -> float:
    """Equal-width-bin ECE of p(pneumonia) against the reviewed label (evaluate's definition)."""
    return stats.expected_calibration_error(truth, p, bins)


def reliability(p: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per non-empty bin: mean predicted probability, observed pneumonia rate, count."""
    return [
        {"predicted": b.mean_predicted, "observed": b.observed, "n": b.count}
        for b in stats.calibration_bins(truth, p, bins)
    ]


def reviewed_cases(store: Store, *, per_model: int) -> dict[str, list[tuple[str, float, bool]]]:
    """model id -> newest ``per_model`` reviewed predictions as (predicted label, p, truly pneumonia)."""
    query = (
        select(
            Review.prediction_id,
            Review.label,
            PredictionRecord.model_name,
            PredictionRecord.model_version,
            PredictionRecord.label,
            PredictionRecord.p_pneumonia,
        )
        .join(PredictionRecord, PredictionRecord.id == Review.prediction_id)
        .order_by(Review.id.desc())
    )
    seen: set[str] = set()
    cases: dict[str, list[tuple[str, float, bool]]] = defaultdict(list)
    with store.reading() as session:
        for prediction_id, truth, name, version, predicted, p in session.execute(query):
            model = f"{name}:{version}"
            if prediction_id in seen or len(cases[model]) >= per_model:
                continue  # an older review of the same prediction is superseded
            seen.add(prediction_id)
            cases[model].append((predicted, float(p), truth == "pneumonia"))
    return dict(cases)


def performance(cases: list[tuple[str, float, bool]], min_reviews: int) -> dict[str, Any]:
    n = len(cases)
    out: dict[str, Any] = {"n": n, "min_reviews": min_reviews, "reported": n >= min_reviews}
    if not out["reported"]:
        return out
    predicted = np.array([label == "pneumonia" for label, _, _ in cases])
    truth = np.array([t for _, _, t in cases])
    p = np.array([v for _, v, _ in cases])
    tp, fn = int((predicted & truth).sum()), int((~predicted & truth).sum())
    tn, fp = int((~predicted & ~truth).sum()), int((predicted & ~truth).sum())
    out.update(
        sensitivity=_proportion(tp, tp + fn),
        specificity=_proportion(tn, tn + fp),
        ppv=_proportion(tp, tp + fp),
        npv=_proportion(tn, tn + fn),
        ece=expected_calibration_error(p, truth.astype(np.float64)),
        confusion={"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        reliability=reliability(p, truth.astype(np.float64)),
    )
    return out


def reviewed_performance(store: Store, *, min_reviews: int, window: int) -> list[dict[str, Any]]:
    """Per model version (newest ``window`` reviewed cases each): the rolling reviewed performance."""
    return [
        {"model": model, **performance(cases, min_reviews)}
        for model, cases in sorted(reviewed_cases(store, per_model=window).items())
    ]
