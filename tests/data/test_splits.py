"""Patient-level, stratified validation splits on the real Kermany training set."""

from __future__ import annotations

from collections import Counter

import pytest

from cxr_pneumonia.data.catalog import Manifest, ManifestRow
from cxr_pneumonia.data.splits import (
    Holdouts,
    assert_patient_disjoint,
    counts,
    earliest_patients_split,
    patient_split,
    stratum,
    training_holdouts,
)
from cxr_pneumonia.errors import DataError

Split = tuple[list[ManifestRow], list[ManifestRow]]


@pytest.fixture(scope="module")
def train_rows(kermany_manifest: Manifest) -> list[ManifestRow]:
    return kermany_manifest.select("train")


@pytest.fixture(scope="module")
def split_seed0(train_rows: list[ManifestRow]) -> Split:
    return patient_split(train_rows, 0.15, seed=0)


def test_no_patient_on_both_sides(split_seed0: Split) -> None:
    train, val = split_seed0
    assert not {r.patient_id for r in train} & {r.patient_id for r in val}
    assert_patient_disjoint(train, val)


def test_every_row_lands_on_exactly_one_side(train_rows: list[ManifestRow], split_seed0: Split) -> None:
    train, val = split_seed0
    assert sorted(r.path for r in train + val) == sorted(r.path for r in train_rows)


def test_about_15_percent_in_val(train_rows: list[ManifestRow], split_seed0: Split) -> None:
    assert 0.13 <= len(split_seed0[1]) / len(train_rows) <= 0.17


def test_every_stratum_in_val_with_its_train_proportion(
    train_rows: list[ManifestRow], split_seed0: Split
) -> None:
    overall = Counter(stratum(r) for r in train_rows)
    val = Counter(stratum(r) for r in split_seed0[1])
    assert set(val) == {"normal", "bacterial", "viral"}
    for name, count in overall.items():
        share_all, share_val = count / len(train_rows), val[name] / sum(val.values())
        assert abs(share_val - share_all) < 0.03, (name, share_all, share_val)


def test_deterministic_for_a_seed_and_different_for_another(
    train_rows: list[ManifestRow], split_seed0: Split
) -> None:
    again = patient_split(train_rows, 0.15, seed=0)
    assert [r.path for r in again[1]] == [r.path for r in split_seed0[1]]
    other = patient_split(train_rows, 0.15, seed=1)
    assert {r.path for r in other[1]} != {r.path for r in split_seed0[1]}
    assert_patient_disjoint(*other)


def test_a_fraction_that_is_not_one_over_n(train_rows: list[ManifestRow]) -> None:
    """0.4 used to mean one fold of round(1/0.4) = 2, i.e. half the data."""
    train, val = patient_split(train_rows, 0.4, seed=0)
    assert 0.37 <= len(val) / len(train_rows) <= 0.43
    assert_patient_disjoint(train, val)


def test_counts(split_seed0: Split) -> None:
    val = split_seed0[1]
    c = counts(val)
    assert c["images"] == len(val) == c["normal"] + c["bacterial"] + c["viral"]
    assert c["patients"] == len({r.patient_id for r in val}) < c["images"]


def _rows(patients: list[str], label: str = "normal") -> list[ManifestRow]:
    return [ManifestRow(f"{i}.png", f"{i:064x}", label, None, p, "train") for i, p in enumerate(patients)]


def test_small_and_invalid_inputs() -> None:
    assert patient_split([], 0.15) == ([], [])
    single = _rows(["a", "a", "a"])
    assert patient_split(single, 0.15) == (single, [])
    two = _rows(["a", "b", "a", "b"])
    train, val = patient_split(two, 0.5, seed=0)
    assert len({r.patient_id for r in val}) == 1 and len(train) == len(val) == 2
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            patient_split(two, bad)


def test_assert_patient_disjoint_catches_a_leak() -> None:
    rows = _rows(["a", "b", "c"])
    with pytest.raises(AssertionError, match="patient a"):
        assert_patient_disjoint(rows[:2], rows[:1])


def test_identical_images_of_different_patients_stay_on_one_side() -> None:
    rows = [
        ManifestRow(f"{i}.png", f"{i:064x}", "normal" if i % 2 else "pneumonia", None if i % 2 else "viral",
                    f"p{i}", "train")
        for i in range(40)
    ]  # fmt: skip
    # p0's image is byte-identical to p3's (one scan filed twice under different ids).
    rows[3] = ManifestRow("3.png", rows[0].sha256, "normal", None, "p3", "train")
    for seed in range(30):
        train, val = patient_split(rows, 0.3, seed=seed)
        sides = {any(r.path == path for r in val) for path in ("0.png", "3.png")}
        assert len(sides) == 1, f"seed {seed} put one copy in train and one in val"
        assert_patient_disjoint(train, val)


# ---- the earliest-patients hold-out (val_strategy: earliest) ------------------------------------


@pytest.fixture(scope="module")
def earliest_split(train_rows: list[ManifestRow]) -> Split:
    return earliest_patients_split(train_rows, 0.15)


def test_earliest_split_is_patient_disjoint_and_complete(
    train_rows: list[ManifestRow], earliest_split: Split
) -> None:
    train, val = earliest_split
    assert_patient_disjoint(train, val)
    assert sorted(r.path for r in train + val) == sorted(r.path for r in train_rows)


def test_earliest_split_holds_out_about_15_percent_of_each_stratum(
    train_rows: list[ManifestRow], earliest_split: Split
) -> None:
    # A bare personN id held out for its viral images takes its bacterial ones along (and back), so
    # a stratum may get a few points more than its share.
    overall = Counter(stratum(r) for r in train_rows)
    val = Counter(stratum(r) for r in earliest_split[1])
    for name, count in overall.items():
        assert 0.13 <= val[name] / count <= 0.22, (name, val[name], count)


def normal_ids(rows: list[ManifestRow], prefix: str) -> list[int]:
    """The id numbers of the normal patients of one id series (``IM-``, ``NORMAL2-IM-``)."""
    return [
        int(r.patient_id.removeprefix(prefix))
        for r in rows
        if r.label == "normal" and r.patient_id.startswith(prefix)
    ]


def test_earliest_split_takes_the_lowest_ids_of_each_normal_series(earliest_split: Split) -> None:
    """Kermany's test normals are IM-0001..0111 and NORMAL2-IM-0007..0381: the held-out train normals
    must be the ones next to them, every one below every kept one in its series."""
    train, val = earliest_split

    for prefix in ("IM-", "NORMAL2-IM-"):
        held, kept = normal_ids(val, prefix), normal_ids(train, prefix)
        assert held and kept
        assert max(held) < min(kept), prefix


def test_earliest_split_is_deterministic(train_rows: list[ManifestRow], earliest_split: Split) -> None:
    again = earliest_patients_split(list(reversed(train_rows)), 0.15)
    assert sorted(r.path for r in again[1]) == sorted(r.path for r in earliest_split[1])


# ---- the shift hold-out (shift_holdout > 0): the latest patients of what validation leaves ------


@pytest.fixture(scope="module")
def with_shift(train_rows: list[ManifestRow]) -> Holdouts:
    return training_holdouts(train_rows, "earliest", 0.15, seed=0, shift_holdout=0.10)


def test_a_shift_hold_out_leaves_validation_as_it_was(earliest_split: Split, with_shift: Holdouts) -> None:
    """Runs with and without a shift hold-out validate on the same images, so their scores compare."""
    assert sorted(r.path for r in with_shift.val) == sorted(r.path for r in earliest_split[1])
    assert_patient_disjoint(with_shift.train, with_shift.val, with_shift.shift)
    kept = sorted(r.path for r in with_shift.train + with_shift.shift)
    assert kept == sorted(r.path for r in earliest_split[0])


def test_the_shift_hold_out_is_the_latest_tenth_of_each_series(
    earliest_split: Split, with_shift: Holdouts
) -> None:
    overall = Counter(stratum(r) for r in earliest_split[0])
    held = Counter(stratum(r) for r in with_shift.shift)
    for name, count in overall.items():
        # as for validation: a personN held out for its viral images takes its bacterial ones along
        assert 0.08 <= held[name] / count <= 0.18, (name, held[name], count)

    for prefix in ("IM-", "NORMAL2-IM-"):
        held, kept = normal_ids(with_shift.shift, prefix), normal_ids(with_shift.train, prefix)
        assert held and kept
        assert min(held) > max(kept), prefix  # every held-out id comes after every kept one


def test_without_a_shift_fraction_nothing_is_held_back(
    train_rows: list[ManifestRow], earliest_split: Split
) -> None:
    sides = training_holdouts(train_rows, "earliest", 0.15, seed=0)
    assert sides.shift == []
    assert sorted(r.path for r in sides.train) == sorted(r.path for r in earliest_split[0])


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5])
def test_a_shift_fraction_outside_0_1_is_a_config_error(
    train_rows: list[ManifestRow], fraction: float
) -> None:
    with pytest.raises(DataError, match="shift_holdout must be between 0 and 1"):
        training_holdouts(train_rows, "earliest", 0.15, seed=0, shift_holdout=fraction)


def test_an_unknown_validation_strategy_is_a_config_error(train_rows: list[ManifestRow]) -> None:
    with pytest.raises(DataError, match="unknown val_strategy 'latest'"):
        training_holdouts(train_rows, "latest", 0.15, seed=0)
