"""A tiny real training set: a CSV over a few dozen Kermany train images (absolute paths; nothing
copied). Shared by the training tests and the train-job test (a module with its own name, like
registry_helpers.py, so tests anywhere can import it)."""

from __future__ import annotations

import csv
from pathlib import Path


def _pick(folder: Path, pattern: str, n: int) -> list[Path]:
    return sorted(folder.glob(pattern))[:n]


def write_tiny_csv(kermany: Path, path: Path, per_class: int = 16) -> Path:
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
