"""Reading the node's results back: the SR's content items and the Secondary Capture's pixels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset

SCHEME = "99CXRAI"


def content_items(ds: Dataset) -> Iterator[Dataset]:
    """Every content item of an SR, depth first."""
    for item in ds.get("ContentSequence", []):
        yield item
        yield from content_items(item)


def concept(item: Dataset) -> tuple[str, str]:
    code = item.ConceptNameCodeSequence[0]
    return str(code.CodingSchemeDesignator), str(code.CodeValue)


def numeric(sr: Dataset, code_value: str) -> float:
    """The exact value of a NUM item (FloatingPointValue, else the DS NumericValue)."""
    for item in content_items(sr):
        if item.ValueType == "NUM" and concept(item) == (SCHEME, code_value):
            measured = item.MeasuredValueSequence[0]
            if "FloatingPointValue" in measured:
                return float(measured.FloatingPointValue)
            return float(measured.NumericValue)
    raise AssertionError(f"the SR has no NUM item {code_value}")


def coded(sr: Dataset, scheme: str, code_value: str) -> tuple[str, str]:
    """(scheme, value) of the coded answer of a CODE item."""
    for item in content_items(sr):
        if item.ValueType == "CODE" and concept(item) == (scheme, code_value):
            answer = item.ConceptCodeSequence[0]
            return str(answer.CodingSchemeDesignator), str(answer.CodeValue)
    raise AssertionError(f"the SR has no CODE item {scheme} {code_value}")


def texts(sr: Dataset) -> list[str]:
    return [str(item.TextValue) for item in content_items(sr) if item.ValueType == "TEXT"]


def referenced_sources(sr: Dataset) -> list[str]:
    return [
        str(ref.ReferencedSOPInstanceUID)
        for item in content_items(sr)
        if item.ValueType == "IMAGE"
        for ref in item.ReferencedSOPSequence
    ]


def processing_equipment(ds: Dataset) -> list[Any]:
    return [
        item
        for item in ds.get("ContributingEquipmentSequence", [])
        if item.PurposeOfReferenceCodeSequence[0].CodeValue == "109102"
        and str(item.Manufacturer) == "CXR Pneumonia Detector"
    ]
