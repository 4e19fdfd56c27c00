"""Catalog a dataset (folder layout or CSV) into a manifest with a content-derived version id."""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, InputError
from ..imaging import load
from ..imaging.limits import Limits
from .dvc import DvcVersion, dvc_version
from .labels import kermany_name_info, normalize_label, normalize_subtype

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".tif", ".tiff", ""}
SPLIT_NAMES = {"train", "val", "validation", "test"}
MANIFEST_FIELDS = ("path", "sha256", "label", "subtype", "patient_id", "split")


@dataclass(frozen=True)
class ManifestRow:
    path: str  # relative to the manifest's root
    sha256: str
    label: str  # "normal" | "pneumonia"
    subtype: str | None  # "bacterial" | "viral" | None
    patient_id: str
    split: str | None  # "train" | "val" | "test" | None


@dataclass
class Manifest:
    root: Path
    rows: list[ManifestRow]
    unreadable: list[dict[str, str]] = field(default_factory=list)
    # The DVC version the data came from (a .dvc file or dvc.lock names it), None when untracked.
    dvc: DvcVersion | None = None

    @property
    def version_id(self) -> str:
        """Hash of the manifest content (not of file dates or the root's location)."""
        digest = hashlib.sha256()
        for row in sorted(self.rows, key=lambda r: r.path):
            digest.update("|".join(_row_values(row)).encode() + b"\n")
        return digest.hexdigest()[:16]

    def select(self, split: str) -> list[ManifestRow]:
        return [r for r in self.rows if r.split == split]

    def absolute(self, row: ManifestRow) -> Path:
        return self.root / row.path

    def write_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(MANIFEST_FIELDS)
            for row in self.rows:
                writer.writerow(_row_values(row))

    def summary(self) -> dict[str, Any]:
        by_split: dict[str, Counter[str]] = defaultdict(Counter)
        patients: dict[str, set[str]] = defaultdict(set)
        for row in self.rows:
            split = row.split or "unsplit"
            by_split[split][row.label] += 1
            if row.subtype:
                by_split[split][row.subtype] += 1
            by_split[split]["total"] += 1
            patients[split].add(row.patient_id)
        by_sha: dict[str, list[ManifestRow]] = defaultdict(list)
        for row in self.rows:
            by_sha[row.sha256].append(row)
        duplicates = []
        for sha, group in sorted(by_sha.items()):
            if len(group) > 1:
                splits = sorted({r.split or "unsplit" for r in group})
                duplicates.append(
                    {
                        "sha256": sha,
                        "paths": [r.path for r in group],
                        "splits": splits,
                        "across_splits": len(splits) > 1,
                    }
                )
        patient_splits: dict[str, set[str]] = defaultdict(set)
        label_splits: dict[tuple[str, str, str | None], set[str]] = defaultdict(set)
        for row in self.rows:
            patient_splits[row.patient_id].add(row.split or "unsplit")
            label_splits[(row.patient_id, row.label, row.subtype)].add(row.split or "unsplit")
        return {
            "root": str(self.root),
            "version_id": self.version_id,
            "dvc": self.dvc.to_dict() if self.dvc else None,
            "images": len(self.rows),
            "patients": len({r.patient_id for r in self.rows}),
            "splits": {
                split: {**dict(counts), "patients": len(patients[split])}
                for split, counts in sorted(by_split.items())
            },
            "duplicates": duplicates,
            "duplicates_across_splits": sum(1 for d in duplicates if d["across_splits"]),
            "patients_in_several_splits": sorted(p for p, s in patient_splits.items() if len(s) > 1),
            # The stronger sign of a leak: the same id with the same label (and subtype) on both sides.
            # Kermany's personN ids are shared only across subtypes (numbered per class, it seems).
            "patients_in_several_splits_same_label": sorted(
                {key[0] for key, s in label_splits.items() if len(s) > 1}
            ),
            "unreadable": self.unreadable,
        }


def _row_values(row: ManifestRow) -> list[str]:
    return [row.path, row.sha256, row.label, row.subtype or "", row.patient_id, row.split or ""]


def read_manifest_csv(path: Path, root: Path | None = None) -> Manifest:
    """Read a manifest written by :meth:`Manifest.write_csv`."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [
            ManifestRow(
                path=r["path"],
                sha256=r["sha256"],
                label=r["label"],
                subtype=r["subtype"] or None,
                patient_id=r["patient_id"],
                split=r["split"] or None,
            )
            for r in reader
        ]
    return Manifest(root=root or path.parent, rows=rows)


Progress = Callable[[int, int], None]


def scan(source: Path, *, verify: bool = True, progress: Progress | None = None) -> Manifest:
    """Catalog a folder (ROOT/<split>/<CLASS>/* or ROOT/<CLASS>/*) or a CSV (path,label[,...]).

    With ``verify`` every image is decoded through :func:`imaging.load`; files that fail are listed
    as unreadable and left out of the manifest.
    """
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        entries, root = _entries_from_csv(source), source.parent
    elif source.is_dir():
        entries, root = _entries_from_folder(source), source
    else:
        raise DataError(f"{source} is neither a folder nor a CSV file", code="data_not_found")
    if not entries:
        raise DataError(f"no images found under {source}", code="data_empty")
    manifest = _build(root, entries, verify=verify, progress=progress)
    manifest.dvc = dvc_version(source)
    return manifest


@dataclass(frozen=True)
class _Entry:
    path: Path
    label: str
    subtype: str | None
    patient_id: str | None
    split: str | None


def _entries_from_folder(root: Path) -> list[_Entry]:
    entries: list[_Entry] = []
    children = sorted(p for p in root.iterdir() if p.is_dir())
    split_dirs = [p for p in children if p.name.lower() in SPLIT_NAMES]
    layout = [(d, _canonical_split(d.name)) for d in split_dirs] if split_dirs else [(root, None)]
    for base, split in layout:
        for class_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            label = normalize_label(class_dir.name)
            if label is None:
                continue
            entries.extend(
                _Entry(
                    path=f,
                    label=label,
                    subtype=normalize_subtype(class_dir.name) if label == "pneumonia" else None,
                    patient_id=None,
                    split=split,
                )
                for f in _image_files(class_dir)
            )
    return entries


def _image_files(folder: Path) -> Iterable[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES:
            yield path


def _entries_from_csv(csv_path: Path) -> list[_Entry]:
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"path", "label"} <= set(reader.fieldnames):
            raise DataError(f"{csv_path} needs the columns path,label", code="bad_csv")
        entries = []
        for line_no, record in enumerate(reader, start=2):
            where = f"{csv_path}:{line_no}"
            raw_label = (record.get("label") or "").strip()
            label = normalize_label(raw_label)
            if label is None:
                raise DataError(f"{where}: unknown label {raw_label!r}", code="bad_csv")
            raw_path = (record.get("path") or "").strip()
            if not raw_path:
                raise DataError(f"{where}: empty path", code="bad_csv")
            raw_split = (record.get("split") or "").strip()
            split = _canonical_split(raw_split) if raw_split else None
            if split is not None and split not in SPLIT_NAMES:
                raise DataError(f"{where}: unknown split {raw_split!r} (train, val or test)", code="bad_csv")
            path = Path(raw_path)
            entries.append(
                _Entry(
                    path=path if path.is_absolute() else csv_path.parent / path,
                    label=label,
                    # A label of "viral"/"bacterial" says the subtype too when no column does.
                    subtype=(normalize_subtype(record.get("subtype")) or normalize_subtype(raw_label))
                    if label == "pneumonia"
                    else None,
                    patient_id=(record.get("patient_id") or "").strip() or None,
                    split=split,
                )
            )
    return entries


def csv_image_paths(csv_path: Path) -> list[Path]:
    """The image paths a dataset CSV lists (relative ones against its folder), without reading them."""
    return [entry.path for entry in _entries_from_csv(csv_path)]


def _canonical_split(name: str) -> str:
    name = name.strip().lower()
    return "val" if name == "validation" else name


def _build(root: Path, entries: list[_Entry], *, verify: bool, progress: Progress | None) -> Manifest:
    limits = Limits.from_settings()
    rows: list[ManifestRow] = []
    unreadable: list[dict[str, str]] = []
    for index, entry in enumerate(entries):
        relative = _relative(entry.path, root)
        try:
            if verify:
                sha256 = load(entry.path, limits).sha256
            else:
                sha256 = hashlib.sha256(entry.path.read_bytes()).hexdigest()
        except InputError as exc:
            unreadable.append({"path": relative, "error": exc.code, "detail": exc.detail})
        except OSError as exc:
            unreadable.append({"path": relative, "error": "unreadable", "detail": str(exc)})
        else:
            patient, name_subtype = kermany_name_info(entry.path.name)
            subtype = entry.subtype or (name_subtype if entry.label == "pneumonia" else None)
            rows.append(
                ManifestRow(
                    path=relative,
                    sha256=sha256,
                    label=entry.label,
                    subtype=subtype,
                    # Without a patient id, each image is its own patient (the safe default for splits
                    # is not available, so say so in the id).
                    patient_id=entry.patient_id or patient or f"image:{sha256[:16]}",
                    split=entry.split,
                )
            )
        if progress is not None:
            progress(index + 1, len(entries))
    return Manifest(root=root, rows=rows, unreadable=unreadable)


def _relative(path: Path, root: Path) -> str:
    """The path as the dataset names it: symlinks are not followed, so a folder of links to files
    elsewhere keeps its own layout (and its version id does not depend on where the targets live)."""
    absolute, absolute_root = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    if absolute.is_relative_to(absolute_root):
        return absolute.relative_to(absolute_root).as_posix()
    resolved = path.resolve()
    if resolved.is_relative_to(root.resolve()):
        return resolved.relative_to(root.resolve()).as_posix()
    return absolute.as_posix()
