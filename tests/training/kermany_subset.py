"""The small real Kermany subsets the training tests train on (a module of its own name, so tests
can import it; conftest.py is not importable by name)."""

from __future__ import annotations

import csv
from pathlib import Path


def _pick(folder: Path, pattern: str, n: int) -> list[Path]:
    return sorted(folder.glob(pattern))[:n]


def write_dataset_csv(kermany: Path, per_class: int, path: Path) -> Path:
    """A CSV over the first ``per_class`` real Kermany train images of normal, bacterial and viral
    (absolute paths; nothing copied)."""
    train = kermany / "train"
    rows = [(p, "normal") for p in _pick(train / "NORMAL", "IM-*.jpeg", per_class)]
    rows += [(p, "pneumonia") for p in _pick(train / "PNEUMONIA", "*_bacteria_*.jpeg", per_class)]
    rows += [(p, "pneumonia") for p in _pick(train / "PNEUMONIA", "*_virus_*.jpeg", per_class)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        for image, label in rows:
            writer.writerow([str(image.resolve()), label, "train"])
    return path
