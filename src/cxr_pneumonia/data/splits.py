"""Patient-level, label-stratified splits: one patient never lands on two sides."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from ..errors import DataError
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


@dataclass(frozen=True)
class Holdouts:
    """A training run's patient-disjoint sides of the non-test data."""

    train: list[ManifestRow]
    val: list[ManifestRow]  # everything after training is fitted here
    shift: list[ManifestRow]  # nothing is fitted here: a second acquisition period (may be empty)


def training_holdouts(
    rows: list[ManifestRow], val_strategy: str, val_fraction: float, seed: int, shift_holdout: float = 0.0
) -> Holdouts:
    """Split the non-test rows as a training config says (test rows are dropped here, never read):
    validation as ``val_strategy`` makes it (a split column's ``val`` rows win), then, when
    ``shift_holdout`` > 0, the latest patients of what is left.

    Validation is made first, exactly as before shift hold-outs existed, so a run with one validates on
    the same images as a run without (their validation scores compare); no model of the config has
    trained on the shift hold-out."""
    rows = [r for r in rows if r.split in (None, "train", "val")]
    given_val = [r for r in rows if r.split == "val"]
    if given_val:
        train, val = [r for r in rows if r.split != "val"], given_val
    elif val_strategy == "earliest":
        train, val = earliest_patients_split(rows, val_fraction)
    elif val_strategy == "random":
        train, val = patient_split(rows, val_fraction, seed)
    else:
        raise DataError(f"unknown val_strategy {val_strategy!r} (random or earliest)", code="bad_config")
    shift: list[ManifestRow] = []
    if shift_holdout:
        if not 0.0 < shift_holdout < 1.0:
            raise DataError(f"shift_holdout must be between 0 and 1, not {shift_holdout}", code="bad_config")
        train, shift = latest_patients_split(train, shift_holdout)
    assert_patient_disjoint(train, val, shift)
    return Holdouts(train, val, shift)


def earliest_patients_split(
    rows: list[ManifestRow], val_fraction: float = 0.15
) -> tuple[list[ManifestRow], list[ManifestRow]]:
    """Split rows into (train, val) by patient, holding out the *earliest* patients of every
    (stratum, id series): e.g. the lowest ``IM-NNNN`` and ``NORMAL2-IM-NNNN`` numbers among normals and
    the lowest ``personN`` among bacterial and viral cases.

    Why: in Kermany's data the ids follow acquisition order, and the official test split holds the
    earliest normal patients of both series (test IM-0001..0111 and NORMAL2-IM-0007..0381, train
    IM-0115.. and NORMAL2-IM-0383..). A random patient split from train is far easier than test (its
    AUROC saturates at 0.999); the train patients whose ids lie next to test's are the closest
    stand-in for it that does not read the test split. Deterministic: no seed.
    """
    return _period_split(rows, val_fraction, latest=False)


def latest_patients_split(
    rows: list[ManifestRow], fraction: float
) -> tuple[list[ManifestRow], list[ManifestRow]]:
    """(rest, held out): the *latest* patients of every (stratum, id series), ``fraction`` of each
    group's images. With the earliest hold-out beside it, a second acquisition period that nothing was
    fitted on: what a calibration fitted on one period does on another (docs/training.md)."""
    return _period_split(rows, fraction, latest=True)


def _period_split(
    rows: list[ManifestRow], fraction: float, latest: bool
) -> tuple[list[ManifestRow], list[ManifestRow]]:
    if not 0.0 < fraction < 1.0:
        raise ValueError("the held-out fraction must be between 0 and 1")
    images_by_group: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for row in rows:
        images_by_group[(stratum(row), _series(row.patient_id))][row.patient_id] += 1
    held_patients: set[str] = set()
    for images in images_by_group.values():
        # patients in acquisition order (or its reverse), until the group's share of *images* is
        # reached (early Kermany patients have more images each, so a share of patients would take
        # too many images)
        wanted, taken = fraction * sum(images.values()), 0
        for patient in sorted(images, key=_id_number, reverse=latest):
            if taken >= wanted:
                break
            held_patients.add(patient)
            taken += images[patient]
    held = {i for i, r in enumerate(rows) if r.patient_id in held_patients}
    _keep_identical_images_together(rows, held)
    rest = [r for i, r in enumerate(rows) if i not in held]
    return rest, [r for i, r in enumerate(rows) if i in held]


def acquisition_halves(patient_ids: Sequence[str]) -> list[int]:
    """0 for the earlier half of the patients of each id series, 1 for the later half (per image).

    Where ids follow acquisition time (Kermany's do), the halves are two acquisition periods; elsewhere
    they are still two disjoint groups of patients. The drift monitor's feature null is drawn across
    them (monitoring/stats.py MMDTest), so it includes the variation between patients and periods."""
    by_series: dict[str, set[str]] = defaultdict(set)
    for patient in patient_ids:
        by_series[_series(patient)].add(patient)
    later: set[str] = set()
    for patients in by_series.values():
        ordered = sorted(patients, key=_id_number)
        later.update(ordered[len(ordered) // 2 :])
    return [int(p in later) for p in patient_ids]


def _series(patient_id: str) -> str:
    """The id without its number: ``NORMAL2-IM-0383`` -> ``NORMAL2-IM-``, ``person12`` -> ``person``."""
    return re.sub(r"\d+$", "", patient_id)


def _id_number(patient_id: str) -> tuple[int, str]:
    match = re.search(r"(\d+)$", patient_id)
    return (int(match.group(1)) if match else -1, patient_id)


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


def seeded_patient_halves(
    patient_ids: list[str], fit_fraction: float, seed: int
) -> tuple[set[str], set[str]]:
    """(patients to fit on, patients left untouched) of an external sample, by patient, seeded: what
    is fitted on one side is measured and reported only on the other."""
    patients = sorted(set(patient_ids))
    order = np.random.default_rng(seed).permutation(len(patients))
    n_fit = round(fit_fraction * len(patients))
    fit = {patients[i] for i in order[:n_fit]}
    return fit, set(patients) - fit
