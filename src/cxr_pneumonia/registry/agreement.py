"""How two models agree on the same inputs (answered by one, shadowed by the other), and how each
does on the cases a clinician reviewed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..stats import wilson_ci
from ..store.shadow import Pair


def _proportion(successes: int, total: int) -> dict[str, Any]:
    low, high = wilson_ci(successes, total)
    return {
        "value": successes / total if total else None,
        "n": total,
        "ci95": [low, high] if total else None,
    }


def _sens_spec(labels: list[tuple[str, str]]) -> dict[str, Any]:
    """labels: (predicted, truth) pairs on reviewed cases."""
    positives = [p for p, t in labels if t == "pneumonia"]
    negatives = [p for p, t in labels if t == "normal"]
    return {
        "sensitivity": _proportion(sum(p == "pneumonia" for p in positives), len(positives)),
        "specificity": _proportion(sum(p == "normal" for p in negatives), len(negatives)),
    }


def agreement(pairs: Iterable[Pair], a: str, b: str, points: int = 500) -> dict[str, Any]:
    rows = list(pairs)
    n = len(rows)
    agree = sum(p.answered.label == p.shadow.label for p in rows)
    deltas = [abs(p.answered.p_pneumonia - float(p.shadow.p_pneumonia or 0.0)) for p in rows]
    reviewed = [p for p in rows if p.truth in ("normal", "pneumonia")]
    return {
        "a": a,
        "b": b,
        "pairs": n,
        "agreement": _proportion(agree, n),
        "mean_abs_delta_p": sum(deltas) / n if n else None,
        "label_flips": {
            "normal_to_pneumonia": sum(
                p.answered.label == "normal" and p.shadow.label == "pneumonia" for p in rows
            ),
            "pneumonia_to_normal": sum(
                p.answered.label == "pneumonia" and p.shadow.label == "normal" for p in rows
            ),
        },
        "reviewed": len(reviewed),
        "on_reviewed": {
            "a": _sens_spec([(p.answered.label, str(p.truth)) for p in reviewed]),
            "b": _sens_spec([(str(p.shadow.label), str(p.truth)) for p in reviewed]),
        },
        # p(a) vs p(b), the most recent first, for a scatter plot
        "points": [
            [round(p.answered.p_pneumonia, 4), round(float(p.shadow.p_pneumonia or 0.0), 4)]
            for p in rows[:points]
        ],
    }
