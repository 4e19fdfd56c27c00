"""Fixtures for the imaging tests: builders of synthetic DICOM files (see dicom_builders.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from dicom_builders import build_dataset, to_bytes
from pydicom.dataset import Dataset

MakeDataset = Callable[..., Dataset]
ToBytes = Callable[[Dataset], bytes]


@pytest.fixture
def make_dataset() -> MakeDataset:
    return build_dataset


@pytest.fixture
def dicom_bytes() -> ToBytes:
    return to_bytes
