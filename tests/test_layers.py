"""The import layers declared in pyproject.toml ([tool.importlinter]) hold, and a wrong import breaks them.

`lint-imports` runs on the real tree, then on copies of it with one deliberate wrong import each: every
contract has to fail on what it is there to forbid, or it protects nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = REPO_ROOT / "pyproject.toml"
PACKAGE = REPO_ROOT / "src" / "cxr_pneumonia"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(src: Path, cwd: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """lint-imports with ``src`` first on the path, so that it analyses that tree's cxr_pneumonia."""
    if not LINT_IMPORTS.exists():
        pytest.fail(f"lint-imports is not installed beside {sys.executable} (the dev extra has it)")
    selected = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *selected, str(PYPROJECT)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(src), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_real_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = lint_imports(REPO_ROOT / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract"),
    [
        ("store/records.py", "from ..service import metrics", "service-only-from-cli"),
        ("store/facade.py", "import cxr_pneumonia.service.metrics", "layers"),
        ("dicom_node/node.py", "from ..service.app import create_app", "layers"),  # doors are siblings
        ("inference/predictor.py", "from ..store.facade import Store", "layers"),  # upwards
        ("service/deps.py", "from ..training import run", "layers"),  # training stays out of serving
        ("inference/predictor.py", "import torch", "no-torch"),
        ("store/audit.py", "from torchvision import transforms", "no-torch"),
        ("store/facade.py", "from fastapi import HTTPException", "no-http-below-the-doors"),
        ("store/digest.py", "from . import audit", "acyclic"),  # audit imports digest
    ],
)
def test_a_wrong_import_breaks_its_contract(
    tmp_path: Path, module: str, wrong_import: str, contract: str
) -> None:
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "cxr_pneumonia", ignore=shutil.ignore_patterns("__pycache__", "static"))
    target = src / "cxr_pneumonia" / module
    target.write_text(target.read_text() + f"\n{wrong_import}  # deliberately wrong\n")
    result = lint_imports(src, tmp_path, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and "1 broken" in result.stdout, result.stdout
