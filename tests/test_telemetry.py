"""No library sends usage telemetry: the switches are set by the project before the library loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cxr_pneumonia.config import TELEMETRY_SWITCHES

PROBE = """
import json, os, sys
{setup}
state = {{name: os.environ.get(name) for name in {names!r}}}
try:
    from mlflow.telemetry.utils import is_telemetry_disabled
    state["mlflow_says_disabled"] = is_telemetry_disabled()
except ImportError:
    state["mlflow_says_disabled"] = None
print(json.dumps(state))
"""


def _probe(setup: str, **env: str) -> dict[str, object]:
    skipped = {*TELEMETRY_SWITCHES, "CI"}  # CI=true would turn MLflow's off by itself: prove ours does
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CXR_") and k not in skipped}
    environment.update(env)
    code = PROBE.format(setup=setup, names=list(TELEMETRY_SWITCHES))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "setup",
    [
        "import cxr_pneumonia.cli",
        "from cxr_pneumonia.service.app import create_app",
        "from cxr_pneumonia.training import tracking",
    ],
    ids=["cli", "service", "training"],
)
def test_every_door_starts_with_telemetry_off(setup: str) -> None:
    if "training" in setup:
        pytest.importorskip("torch")
    state = _probe(setup)
    assert {k: state[k] for k in TELEMETRY_SWITCHES} == TELEMETRY_SWITCHES
    assert state["mlflow_says_disabled"] in (True, None)


def test_a_training_run_tracks_with_mlflow_telemetry_off(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    state = _probe(
        "from pathlib import Path\n"
        "from cxr_pneumonia.training.config import TrainConfig\n"
        "from cxr_pneumonia.training.tracking import Tracker\n"
        f"tracker = Tracker(TrainConfig(), Path({str(tmp_path)!r}), 'test-data')\n"
        "assert tracker._mlflow is not None, 'the MLflow run did not start'\n",
        CXR_DATA_DIR=str(tmp_path / "var"),
    )
    assert state["mlflow_says_disabled"] is True
    assert (tmp_path / "mlflow_run_id").exists()


def test_a_user_may_opt_in() -> None:
    state = _probe("import cxr_pneumonia.cli", CXR_TELEMETRY="true")
    assert state["MLFLOW_DISABLE_TELEMETRY"] is None
