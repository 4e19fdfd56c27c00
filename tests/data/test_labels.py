"""Label vocabulary and Kermany file names."""

from __future__ import annotations

import pytest

from cxr_pneumonia.data.labels import (
    CLASSES,
    class_index,
    kermany_name_info,
    normalize_label,
    normalize_subtype,
)


@pytest.mark.parametrize(
    ("raw", "label"),
    [("NORMAL", "normal"), (" Pneumonia ", "pneumonia"), ("virus", "pneumonia"), ("BACTERIAL", "pneumonia"),
     ("0", "normal"), ("1", "pneumonia"), ("no finding", "normal"), ("covid", None), ("", None)],
)  # fmt: skip
def test_normalize_label(raw: str, label: str | None) -> None:
    assert normalize_label(raw) == label


@pytest.mark.parametrize(
    ("raw", "subtype"),
    [("bacteria", "bacterial"), ("VIRAL", "viral"), ("pneumonia", None), ("", None), (None, None)],
)
def test_normalize_subtype(raw: str | None, subtype: str | None) -> None:
    assert normalize_subtype(raw) == subtype


@pytest.mark.parametrize(
    ("name", "info"),
    [
        ("person1_bacteria_1.jpeg", ("person1", "bacterial")),
        ("person1608_virus_2786.jpeg", ("person1608", "viral")),
        ("PERSON12_VIRUS_3.jpeg", ("person12", "viral")),
        ("IM-0115-0001.jpeg", ("IM-0115", None)),
        ("NORMAL2-IM-1427-0001.jpeg", ("NORMAL2-IM-1427", None)),
        ("train/NORMAL/IM-0001-0001.jpeg", ("IM-0001", None)),
        ("chest.png", (None, None)),
        ("person_bacteria.jpeg", (None, None)),
    ],
)
def test_kermany_name_info(name: str, info: tuple[str | None, str | None]) -> None:
    assert kermany_name_info(name) == info


def test_class_index() -> None:
    assert CLASSES == ("normal", "bacterial", "viral")
    assert class_index("normal", None) == 0
    assert class_index("pneumonia", "bacterial") == 1
    assert class_index("pneumonia", "viral") == 2
    assert class_index("pneumonia", None) == -1
