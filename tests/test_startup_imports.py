"""`cxr predict` on a PNG/JPEG loads only what reading it needs: no database layer (SQLAlchemy, Alembic,
the store's cryptography) and no DICOM library, which together cost about a second of start-up.
A DICOM input still loads pydicom, where it is needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import json, sys
sys.argv = ["cxr", "predict", {path!r}, "--format", "json"]
from cxr_pneumonia.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
loaded = sorted({{name.split(".")[0] for name in sys.modules}})
print(json.dumps({{"code": code, "loaded": loaded}}))
"""

NOT_FOR_A_JPEG = {"sqlalchemy", "alembic", "pydicom", "cryptography", "mlflow", "torch", "fastapi"}


def _predict_and_list_modules(path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(path=str(path))], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_jpeg_predict_loads_no_database_or_dicom_library(kermany: Path) -> None:
    result = _predict_and_list_modules(kermany / "test" / "NORMAL" / "IM-0003-0001.jpeg")
    assert result["code"] == 0
    assert NOT_FOR_A_JPEG.isdisjoint(result["loaded"]), NOT_FOR_A_JPEG & set(result["loaded"])  # type: ignore[arg-type]
    assert "onnxruntime" in result["loaded"]  # it did predict


def test_a_dicom_predict_still_loads_pydicom(shared_dicom: Path) -> None:
    path = shared_dicom / "cr-chest-monochrome2-jpeg-baseline.dcm"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    result = _predict_and_list_modules(path)
    assert result["code"] == 0
    assert "pydicom" in result["loaded"]  # type: ignore[operator]
