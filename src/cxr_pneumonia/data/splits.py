"""Patient-level, label-stratified splits: one patient never lands on two sides."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from .catalog import ManifestRow


def stratum(row: ManifestRow) -> str:
    return row.subtype or row.label


def patient_split(
    rows: list[ManifestRow], val_fraction: float = 0.15, seed: int = 0
) -> tuple[list[ManifestRow], list[ManifestRow]]:
    """Split rows into (train, val) by patient, stratified by normal/bacterial/viral.

    scikit-learn's StratifiedGroupKFold does the balancing; the validation side is one of
    round(1 / val_fraction) folds.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError("val_fraction must be between 0 and 1")
    if not rows:
        return [], []
    n_splits = max(2, round(1.0 / val_fraction))
    groups = np.array([r.patient_id for r in rows])
    labels = np.array([stratum(r) for r in rows])
    n_splits = min(n_splits, len(set(groups)))
    if n_splits < 2:
        return list(rows), []
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, val_idx = next(folds.split(np.zeros(len(rows)), labels, groups))
    val_set = set(val_idx.tolist())
    train = [r for i, r in enumerate(rows) if i not in val_set]
    val = [r for i, r in enumerate(rows) if i in val_set]
    return train, val


def assert_patient_disjoint(*sides: list[ManifestRow]) -> None:
    seen: dict[str, int] = {}
    for index, side in enumerate(sides):
        for row in side:
            other = seen.setdefault(row.patient_id, index)
            if other != index:
                raise AssertionError(f"patient {row.patient_id} is on sides {other} and {index}")


def counts(rows: list[ManifestRow]) -> dict[str, int]:
    c: Counter[str] = Counter(stratum(r) for r in rows)
    per_patient: dict[str, int] = defaultdict(int)
    for r in rows:
        per_patient[r.patient_id] += 1
    return {**dict(c), "images": len(rows), "patients": len(per_patient)}
