"""An external sample of radiographs (another population), listed by a CSV with ``path`` and an
optional ``patient_id`` (paths relative to the CSV), or a folder (each file its own patient)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .splits import seeded_patient_halves

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".tif", ".tiff"}


@dataclass(frozen=True)
class ExternalImage:
    path: Path
    patient_id: str


def read_external(source: Path) -> list[ExternalImage]:
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        return [ExternalImage(p, f"file:{p.relative_to(source)}") for p in files]
    if not source.is_file():
        raise DataError(f"{source} is neither a folder nor a CSV", code="data_missing")
    with source.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "path" not in rows[0]:
        raise DataError(f"{source} needs a 'path' column", code="data_bad_csv")
    return [
        ExternalImage(source.parent / r["path"], (r.get("patient_id") or "").strip() or f"file:{r['path']}")
        for r in rows
    ]


def external_halves(
    source: Path, fit_fraction: float, seed: int
) -> tuple[list[ExternalImage], list[ExternalImage]]:
    """(images to fit on, images never fitted on), split by patient."""
    images = read_external(source)
    fit_patients, _ = seeded_patient_halves([i.patient_id for i in images], fit_fraction, seed)
    return [i for i in images if i.patient_id in fit_patients], [
        i for i in images if i.patient_id not in fit_patients
    ]
