"""The one way the project imports MLflow: telemetry off first (it would call outside hosts)."""

from __future__ import annotations

import os
from types import ModuleType

from ..errors import ModelError


def import_mlflow() -> ModuleType:
    """mlflow with telemetry off; a clear error when the `registry` (or `train`) extra is absent."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # read by mlflow at import
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no progress bars in logs
    try:
        import mlflow
    except ImportError as exc:
        raise ModelError(
            "this needs MLflow: pip install 'cxr-pneumonia[registry]' (serving from an mlflow server "
            "over http(s) needs no MLflow; a local sqlite registry does)",
            code="registry_unavailable",
        ) from exc
    return mlflow
