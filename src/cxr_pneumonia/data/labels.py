"""Label vocabulary and how dataset labels and Kermany file names map onto it."""

from __future__ import annotations

import re

NORMAL, PNEUMONIA = "normal", "pneumonia"
BACTERIAL, VIRAL = "bacterial", "viral"
# The model's three classes, in the order of its logits. model.json records this order.
CLASSES: tuple[str, ...] = ("normal", "bacterial", "viral")

_LABEL_ALIASES = {
    "normal": NORMAL,
    "healthy": NORMAL,
    "negative": NORMAL,
    "no finding": NORMAL,
    "0": NORMAL,
    "pneumonia": PNEUMONIA,
    "positive": PNEUMONIA,
    "1": PNEUMONIA,
    "bacteria": PNEUMONIA,
    "bacterial": PNEUMONIA,
    "virus": PNEUMONIA,
    "viral": PNEUMONIA,
}
_SUBTYPE_ALIASES = {"bacteria": BACTERIAL, "bacterial": BACTERIAL, "virus": VIRAL, "viral": VIRAL}

_PERSON = re.compile(r"^(person\d+)_(bacteria|virus)_\d+", re.IGNORECASE)
_IM = re.compile(r"^((?:NORMAL2-)?IM-\d+)-\d+", re.IGNORECASE)


def normalize_label(raw: str) -> str | None:
    return _LABEL_ALIASES.get(raw.strip().lower())


def normalize_subtype(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    return _SUBTYPE_ALIASES.get(raw.strip().lower())


def kermany_name_info(filename: str) -> tuple[str | None, str | None]:
    """(patient id, subtype) from a Kermany file name, or (None, None) when it is not one."""
    stem = filename.rsplit("/", 1)[-1]
    match = _PERSON.match(stem)
    if match:
        return match.group(1).lower(), normalize_subtype(match.group(2))
    match = _IM.match(stem)
    if match:
        return match.group(1).upper(), None
    return None, None


def class_index(label: str, subtype: str | None) -> int:
    """Index into CLASSES; pneumonia of unknown subtype has none (-1)."""
    if label == NORMAL:
        return 0
    if subtype == BACTERIAL:
        return 1
    if subtype == VIRAL:
        return 2
    return -1
