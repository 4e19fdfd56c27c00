"""Patient-level, label-stratified splits: one patient never lands on two sides."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import islice

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from .catalog import ManifestRow


def stratum(row: ManifestRow) -> str:
    return row.subtype or row.label


def patient_split(
    rows: list[ManifestRow], val_fraction: float = 0.15, seed: int = 0
) -> tuple[list[ManifestRow], list[ManifestRow]]:
    """Split rows into (train, val) by patient, stratified by normal/bacterial/viral.

    scikit-learn's StratifiedGroupKFold does the balancing; the validation side is the union of
    ``k`` of its ``n`` folds, k/n as close to ``val_fraction`` as small fold counts allow.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError("val_fraction must be between 0 and 1")
    if not rows:
        return [], []
    groups = np.array([r.patient_id for r in rows])
    labels = np.array([stratum(r) for r in rows])
    k, n_splits = _folds_for(val_fraction, n_groups=len(set(groups.tolist())))
    if n_splits < 2:
        return list(rows), []
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    val_set: set[int] = set()
    for _, fold_idx in islice(folds.split(np.zeros(len(rows)), labels, groups), k):
        val_set.update(fold_idx.tolist())
    _keep_identical_images_together(rows, val_set)
    train = [r for i, r in enumerate(rows) if i not in val_set]
    val = [r for i, r in enumerate(rows) if i in val_set]
    return train, val


def _folds_for(val_fraction: float, n_groups: int, tolerance: float = 0.01) -> tuple[int, int]:
    """(k, n): take k of n folds. One fold of round(1/f) was the rule before, and is kept whenever it
    is within ``tolerance`` of f (0.15 -> 1 of 7), so recorded seeds keep their splits; fractions it
    fits badly (0.4 -> 1 of 2 = 50%) take several folds of a finer split (0.4 -> 2 of 5)."""
    if n_groups < 2:
        return 1, n_groups
    single = min(max(2, round(1.0 / val_fraction)), n_groups)
    if abs(1.0 / single - val_fraction) <= tolerance:
        return 1, single
    options = [(min(max(1, round(val_fraction * n)), n - 1), n) for n in range(2, min(20, n_groups) + 1)]
    close = [kn for kn in options if abs(kn[0] / kn[1] - val_fraction) <= tolerance]
    if close:
        return close[0]
    return min(options, key=lambda kn: abs(kn[0] / kn[1] - val_fraction))


def _keep_identical_images_together(rows: list[ManifestRow], val_set: set[int]) -> None:
    """Byte-identical images filed under different patients (Kermany's test split has such a pair) must
    not straddle train and val: move every val patient holding such an image to train. Val only
    shrinks, so this ends; with no straddling image it changes nothing, so recorded splits stand."""
    by_sha: dict[str, list[int]] = defaultdict(list)
    by_patient: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_sha[row.sha256].append(index)
        by_patient[row.patient_id].append(index)
    moved = True
    while moved:
        moved = False
        for indices in by_sha.values():
            in_val = [i for i in indices if i in val_set]
            if in_val and len(in_val) < len(indices):
                for i in in_val:
                    val_set.difference_update(by_patient[rows[i].patient_id])
                moved = True


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
