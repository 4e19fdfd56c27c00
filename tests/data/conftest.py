"""The Kermany catalog, scanned once per session (hashing only: decoding is tested elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxr_pneumonia.data.catalog import Manifest, scan


@pytest.fixture(scope="session")
def kermany_manifest(kermany: Path) -> Manifest:
    return scan(kermany, verify=False)
