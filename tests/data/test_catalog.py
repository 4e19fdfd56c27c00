"""The dataset catalog on the real Kermany folder and on CSV and folder layouts built in tmp_path."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxr_pneumonia.data.catalog import Manifest, read_manifest_csv, scan
from cxr_pneumonia.errors import DataError

PERSON = re.compile(r"^(person\d+)_(bacteria|virus)_\d+(?:_\d+)*\.jpeg$")
IM = re.compile(r"^((?:NORMAL2-)?IM-\d+)(?:-\d+)+\.jpeg$")  # some names have two counters


def kermany_files(kermany: Path, split: str, folder: str, pattern: str, n: int) -> list[Path]:
    files = sorted((kermany / split / folder).glob(pattern))[:n]
    assert len(files) == n, f"expected {n} files like {pattern} in {split}/{folder}"
    return files


def png(path: Path, value: int, size: tuple[int, int] = (16, 12)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, dtype=np.uint8)).save(path)
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the real Kermany folder ----------------------------------------------------------------------


def test_kermany_counts(kermany_manifest: Manifest) -> None:
    splits = kermany_manifest.summary()["splits"]
    assert set(splits) == {"train", "test"}
    train, test = splits["train"], splits["test"]
    assert (train["normal"], train["pneumonia"], train["bacterial"], train["viral"]) == (
        1341,
        3875,
        2530,
        1345,
    )
    assert (test["normal"], test["pneumonia"], test["bacterial"], test["viral"]) == (234, 390, 242, 148)
    assert (train["total"], test["total"]) == (5216, 624)
    assert kermany_manifest.unreadable == []


def test_kermany_patient_ids_and_subtypes_come_from_file_names(kermany_manifest: Manifest) -> None:
    seen = {"person": 0, "IM": 0, "NORMAL2": 0}
    for row in kermany_manifest.rows:
        name = row.path.rsplit("/", 1)[-1]
        if match := PERSON.match(name):
            assert row.label == "pneumonia"
            assert row.patient_id == match.group(1)
            assert row.subtype == {"bacteria": "bacterial", "virus": "viral"}[match.group(2)]
            seen["person"] += 1
        else:
            match = IM.match(name)
            assert match, f"unexpected Kermany file name {name}"
            assert row.label == "normal" and row.subtype is None
            assert row.patient_id == match.group(1)
            seen["NORMAL2" if name.startswith("NORMAL2-") else "IM"] += 1
    assert all(count > 100 for count in seen.values()), seen
    # Patients with several images exist, so image-level splitting would leak.
    assert kermany_manifest.summary()["patients"] < len(kermany_manifest.rows)


def test_kermany_ids_in_both_official_splits_never_share_a_subtype(kermany_manifest: Manifest) -> None:
    """The personN ids found in train and test are bacteria on one side and virus on the other."""
    summary = kermany_manifest.summary()
    assert len(summary["patients_in_several_splits"]) == 170
    assert summary["patients_in_several_splits_same_label"] == []


def test_kermany_paths_are_relative_to_the_root(kermany_manifest: Manifest, kermany: Path) -> None:
    row = kermany_manifest.rows[0]
    assert not Path(row.path).is_absolute() and row.path.split("/")[0] in ("train", "test")
    assert kermany_manifest.absolute(row).is_file()


def test_version_id_is_stable_across_scans(kermany_manifest: Manifest, kermany: Path) -> None:
    assert scan(kermany, verify=False).version_id == kermany_manifest.version_id


def test_version_id_changes_when_a_row_changes(kermany_manifest: Manifest) -> None:
    rows = kermany_manifest.rows
    base = kermany_manifest.version_id
    for change in ({"label": "normal" if rows[0].label == "pneumonia" else "pneumonia"}, {"sha256": "0" * 64},
                   {"split": "val"}, {"patient_id": "someone-else"}, {"subtype": "viral"}):  # fmt: skip
        changed = Manifest(
            root=kermany_manifest.root, rows=[dataclasses.replace(rows[0], **change), *rows[1:]]
        )
        assert changed.version_id != base, change
    assert Manifest(root=kermany_manifest.root, rows=rows[1:]).version_id != base
    # Order and location do not matter; content does.
    assert Manifest(root=Path("/elsewhere"), rows=list(reversed(rows))).version_id == base


def test_manifest_csv_round_trip(kermany_manifest: Manifest, tmp_path: Path) -> None:
    path = tmp_path / "manifest.csv"
    kermany_manifest.write_csv(path)
    again = read_manifest_csv(path, root=kermany_manifest.root)
    assert again.rows == kermany_manifest.rows
    assert again.version_id == kermany_manifest.version_id


# -- CSV input --------------------------------------------------------------------------------------


def test_csv_with_all_columns_pointing_at_real_files(kermany: Path, tmp_path: Path) -> None:
    normal = kermany_files(kermany, "train", "NORMAL", "IM-*.jpeg", 2)
    bacteria = kermany_files(kermany, "train", "PNEUMONIA", "*_bacteria_*.jpeg", 1)
    virus = kermany_files(kermany, "test", "PNEUMONIA", "*_virus_*.jpeg", 1)
    source = write_csv(
        tmp_path / "data.csv",
        ["path", "label", "patient_id", "split", "subtype"],
        [
            [str(normal[0]), "normal", "p1", "train", ""],
            [str(normal[1]), "NORMAL", "", "validation", ""],
            [str(bacteria[0]), "pneumonia", "p2", "train", "bacteria"],
            [str(virus[0]), "pneumonia", "p3", "test", ""],
        ],
    )
    manifest = scan(source)  # verify=True: four small JPEGs
    rows = {Path(r.path).name: r for r in manifest.rows}
    assert len(rows) == 4 and manifest.root == tmp_path
    first = rows[normal[0].name]
    assert (first.label, first.patient_id, first.split, first.subtype) == ("normal", "p1", "train", None)
    assert first.path == normal[0].as_posix()  # outside the CSV's folder: kept absolute
    assert first.sha256 == sha256(normal[0])
    second = rows[normal[1].name]
    assert second.split == "val"
    assert second.patient_id == IM.match(normal[1].name).group(1)  # no column value: from the name
    assert rows[bacteria[0].name].subtype == "bacterial"
    assert rows[virus[0].name].subtype == "viral"  # no column value: from the name
    assert manifest.absolute(first) == normal[0]


def test_minimal_csv_with_relative_paths_and_subtype_labels(tmp_path: Path) -> None:
    png(tmp_path / "img" / "a.png", 10)
    png(tmp_path / "img" / "b.png", 20)
    png(tmp_path / "img" / "c.png", 30)
    source = write_csv(
        tmp_path / "labels.csv",
        ["path", "label"],
        [["img/a.png", "normal"], ["img/b.png", "viral"], ["img/c.png", "1"]],
    )
    rows = {r.path: r for r in scan(source).rows}
    assert (rows["img/a.png"].label, rows["img/a.png"].subtype) == ("normal", None)
    assert (rows["img/b.png"].label, rows["img/b.png"].subtype) == ("pneumonia", "viral")
    assert (rows["img/c.png"].label, rows["img/c.png"].subtype) == ("pneumonia", None)
    # Without a patient id every image is its own patient, and the id says so.
    assert rows["img/a.png"].patient_id == f"image:{sha256(tmp_path / 'img' / 'a.png')[:16]}"
    assert all(r.split is None for r in rows.values())


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        (["file", "label"], ["a.png", "normal"], "path,label"),
        (["path", "label"], ["a.png", "covid"], "unknown label"),
        (["path", "label"], ["", "normal"], "empty path"),
        (["path", "label", "split"], ["a.png", "normal", "holdout"], "unknown split"),
    ],
)
def test_bad_csv(tmp_path: Path, header: list[str], row: list[str], message: str) -> None:
    png(tmp_path / "a.png", 0)
    with pytest.raises(DataError) as info:
        scan(write_csv(tmp_path / "bad.csv", header, [row]))
    assert info.value.code == "bad_csv" and message in info.value.detail


# -- folder layouts -------------------------------------------------------------------------------


def _linked_class_folders(root: Path, kermany: Path) -> dict[str, Path]:
    """ROOT/<CLASS>/* without split folders, made of symlinks to real files (never copies)."""
    targets = {
        "NORMAL": kermany_files(kermany, "train", "NORMAL", "IM-*.jpeg", 2)
        + kermany_files(kermany, "train", "NORMAL", "NORMAL2-*.jpeg", 1),
        "PNEUMONIA": kermany_files(kermany, "train", "PNEUMONIA", "*_bacteria_*.jpeg", 2)
        + kermany_files(kermany, "train", "PNEUMONIA", "*_virus_*.jpeg", 1),
    }
    links: dict[str, Path] = {}
    for folder, files in targets.items():
        (root / folder).mkdir(parents=True)
        for target in files:
            link = root / folder / target.name
            link.symlink_to(target)
            links[f"{folder}/{target.name}"] = target
    return links


def test_class_folders_without_splits_made_of_symlinks(kermany: Path, tmp_path: Path) -> None:
    links = _linked_class_folders(tmp_path / "dataset", kermany)
    manifest = scan(tmp_path / "dataset")
    rows = {r.path: r for r in manifest.rows}
    # Paths are the dataset's own (the links), not where the targets happen to live.
    assert set(rows) == set(links)
    for path, target in links.items():
        row = rows[path]
        assert row.split is None and row.sha256 == sha256(target)
        assert row.label == ("normal" if path.startswith("NORMAL/") else "pneumonia")
        assert row.patient_id == (PERSON.match(target.name) or IM.match(target.name)).group(1)
    assert {r.subtype for r in rows.values() if r.label == "pneumonia"} == {"bacterial", "viral"}
    summary = manifest.summary()
    assert summary["splits"]["unsplit"]["normal"] == 3 and summary["splits"]["unsplit"]["pneumonia"] == 3
    # The same layout elsewhere is the same dataset.
    _linked_class_folders(tmp_path / "copy-of-layout", kermany)
    assert scan(tmp_path / "copy-of-layout").version_id == manifest.version_id


def test_split_and_subtype_folders_with_generated_pngs(tmp_path: Path) -> None:
    png(tmp_path / "train" / "NORMAL" / "n1.png", 1)
    png(tmp_path / "train" / "BACTERIA" / "b1.png", 2)
    png(tmp_path / "Validation" / "VIRUS" / "v1.png", 3)
    png(tmp_path / "test" / "normal" / "deeper" / "n2.png", 4)
    (tmp_path / "train" / "NOTES").mkdir()
    (tmp_path / "train" / "NOTES" / "readme.png").write_bytes(b"not a class folder")
    (tmp_path / "train" / "NORMAL" / ".hidden.png").write_bytes(b"ignored")
    rows = {r.path: r for r in scan(tmp_path).rows}
    assert set(rows) == {"train/NORMAL/n1.png", "train/BACTERIA/b1.png", "Validation/VIRUS/v1.png",
                         "test/normal/deeper/n2.png"}  # fmt: skip
    assert (rows["train/BACTERIA/b1.png"].label, rows["train/BACTERIA/b1.png"].subtype) == (
        "pneumonia",
        "bacterial",
    )
    assert (rows["Validation/VIRUS/v1.png"].split, rows["Validation/VIRUS/v1.png"].subtype) == (
        "val",
        "viral",
    )
    assert rows["test/normal/deeper/n2.png"].split == "test"


def test_duplicates_are_reported(tmp_path: Path) -> None:
    first = png(tmp_path / "train" / "NORMAL" / "a.png", 50)
    (tmp_path / "train" / "NORMAL" / "a-again.png").write_bytes(first.read_bytes())
    (tmp_path / "test" / "NORMAL").mkdir(parents=True)
    (tmp_path / "test" / "NORMAL" / "a-in-test.png").write_bytes(first.read_bytes())
    png(tmp_path / "train" / "NORMAL" / "other.png", 60)
    summary = scan(tmp_path).summary()
    assert len(summary["duplicates"]) == 1
    duplicate = summary["duplicates"][0]
    assert duplicate["sha256"] == sha256(first)
    assert sorted(duplicate["paths"]) == [
        "test/NORMAL/a-in-test.png",
        "train/NORMAL/a-again.png",
        "train/NORMAL/a.png",
    ]
    assert duplicate["across_splits"] and summary["duplicates_across_splits"] == 1


def test_kermany_duplicates_stay_within_one_split(kermany_manifest: Manifest) -> None:
    summary = kermany_manifest.summary()
    assert summary["duplicates"], "the Kermany copy has byte-identical images"
    assert summary["duplicates_across_splits"] == 0
    rows = {r.path: r for r in kermany_manifest.rows}
    # One pair is filed under two patients; patient_split keeps such images on one side.
    across_patients = [d for d in summary["duplicates"] if len({rows[p].patient_id for p in d["paths"]}) > 1]
    assert [sorted(rows[p].patient_id for p in d["paths"]) for d in across_patients] == [
        ["NORMAL2-IM-0095", "NORMAL2-IM-0096"]
    ]


def test_unreadable_files_are_listed_not_catalogued(kermany: Path, tmp_path: Path) -> None:
    good = kermany_files(kermany, "train", "NORMAL", "IM-*.jpeg", 1)[0]
    folder = tmp_path / "NORMAL"
    folder.mkdir()
    (folder / "good.jpeg").symlink_to(good)
    data = good.read_bytes()
    (folder / "truncated.jpeg").write_bytes(data[: len(data) // 3])
    (folder / "empty.png").write_bytes(b"")
    manifest = scan(tmp_path)
    assert [r.path for r in manifest.rows] == ["NORMAL/good.jpeg"]
    unreadable = {u["path"]: u["error"] for u in manifest.unreadable}
    assert unreadable == {"NORMAL/truncated.jpeg": "corrupt_image", "NORMAL/empty.png": "empty_file"}
    assert manifest.summary()["unreadable"] == manifest.unreadable
    # Without verification files are only hashed: the truncated one is catalogued.
    assert len(scan(tmp_path, verify=False).rows) == 3


def test_progress_is_reported(tmp_path: Path) -> None:
    for i in range(3):
        png(tmp_path / "NORMAL" / f"{i}.png", i)
    calls: list[tuple[int, int]] = []
    scan(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_scan_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        scan(tmp_path / "missing")
    assert info.value.code == "data_not_found"
    (tmp_path / "NORMAL").mkdir()
    with pytest.raises(DataError) as info:
        scan(tmp_path)
    assert info.value.code == "data_empty"


def test_ids_in_several_splits_are_told_apart_by_label(tmp_path: Path) -> None:
    png(tmp_path / "train" / "PNEUMONIA" / "person1_bacteria_1.png", 10)
    png(tmp_path / "test" / "PNEUMONIA" / "person1_bacteria_2.png", 20)  # same child, same disease: a leak
    png(tmp_path / "train" / "PNEUMONIA" / "person2_virus_3.png", 30)
    png(tmp_path / "test" / "PNEUMONIA" / "person2_bacteria_4.png", 40)  # the id only, not the label
    png(tmp_path / "train" / "PNEUMONIA" / "person3_virus_5.png", 50)
    summary = scan(tmp_path).summary()
    assert summary["patients_in_several_splits"] == ["person1", "person2"]
    assert summary["patients_in_several_splits_same_label"] == ["person1"]
