"""Helpers of the registry tests: the mlflow server's handle, a free port, a derived package.

A module with its own name (not conftest.py, of which there are several) so tests can import it."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class MlflowServer:
    url: str
    artifacts: Path  # the server's artifact root (a test corrupts a file there)


def require_mlflow() -> None:
    """Skip without MLflow on a dev box; in CI (CI=true) its absence is a failure."""
    if importlib.util.find_spec("mlflow") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mlflow is not importable in CI: install the registry extra")
        pytest.skip("mlflow is not installed (pip install '.[registry]')")


def derive_package(
    base: Path,
    dest: Path,
    *,
    version: str,
    temperature_factor: float = 1.0,
    metric_shift: float = 0.0,
    keep_evaluations: bool = True,
) -> Path:
    """A real package made from ``base``: another version (and temperature), which changes its digest.
    Its recorded evaluations are the base's (the weights are the same), optionally dropped, or shifted
    (AUROC and sensitivity lowered, ECE raised by ``metric_shift``) to stand for a worse candidate."""
    import dataclasses

    from cxr_pneumonia.package import ModelPackage, write_manifest

    shutil.copytree(base, dest)
    manifest = ModelPackage.open(dest).manifest
    evaluations: dict[str, Any] = {}
    for key, evaluation in manifest.evaluations.items() if keep_evaluations else ():
        copy = json.loads(json.dumps(evaluation))
        metrics = copy.get("metrics", copy)
        metrics["pneumonia"]["auroc"] -= metric_shift
        metrics["pneumonia"]["sensitivity"] -= metric_shift
        metrics["ece"] += metric_shift
        evaluations[key] = copy
    calibration = dataclasses.replace(
        manifest.calibration, temperature=manifest.calibration.temperature * temperature_factor
    )
    parent = {"digest": manifest.digest, "model_id": manifest.model_id, "relation": "derived for a test"}
    write_manifest(
        dest,
        dataclasses.replace(manifest, version=version, calibration=calibration, evaluations=evaluations,
                            parent=parent),
    )  # fmt: skip
    return dest
