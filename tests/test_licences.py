"""The base install has no GPL/AGPL package (LGPL, dynamically linked, is allowed), and `make sbom`
writes a CycloneDX SBOM of exactly that install."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cxr_pneumonia.licences import base_install, forbidden, pyproject_requirements

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_base_install_has_no_gpl() -> None:
    report = base_install(pyproject_requirements(PYPROJECT))
    assert {"onnxruntime", "fastapi", "imagecodecs", "pydicom"} <= set(report)
    assert "pylibjpeg-libjpeg" not in report and "torch" not in report  # GPL-3; training only
    assert not {name: licence for name, licence in report.items() if forbidden(licence)}


@pytest.mark.parametrize(
    ("licence", "bad"),
    [
        ("GNU General Public License v3 (GPLv3)", True),
        ("GPL-3.0-only", True),
        ("AGPL-3.0-or-later", True),
        ("GNU Affero General Public License v3", True),
        ("LGPL-3.0-only", False),
        ("GNU Lesser General Public License v3 (LGPLv3)", False),
        ("MIT OR GPL-2.0", False),  # a permissive choice is offered
        ("BSD-3-Clause", False),
        ("Apache-2.0", False),
    ],
)
def test_what_counts_as_forbidden(licence: str, bad: bool) -> None:
    assert forbidden(licence) is bad


def test_the_sbom_lists_the_serving_install(tmp_path: Path) -> None:
    cyclonedx = Path(sys.executable).with_name("cyclonedx-py")
    if not cyclonedx.exists() and shutil.which("cyclonedx-py") is None:
        pytest.skip("cyclonedx-bom is not installed (the dev extra)")
    pinned = subprocess.run(
        [sys.executable, "-m", "cxr_pneumonia.licences", "--requirements", "--pyproject", str(PYPROJECT)],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    (tmp_path / "requirements.txt").write_text(pinned)
    out = tmp_path / "sbom.cdx.json"
    subprocess.run(
        [str(cyclonedx if cyclonedx.exists() else shutil.which("cyclonedx-py")), "requirements",
         "--output-format", "JSON", "--output-file", str(out), str(tmp_path / "requirements.txt")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    bom = json.loads(out.read_text())
    assert bom["bomFormat"] == "CycloneDX"
    names = {component["name"].lower() for component in bom["components"]}
    assert {"onnxruntime", "fastapi", "pydicom", "imagecodecs"} <= names
    assert len(names) == len(pinned.splitlines()) and "torch" not in names
