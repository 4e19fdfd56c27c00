"""Start a job's runner process (``python -m cxr_pneumonia.jobs.runner JOB_ID``) from the service.

The runner gets the service's own settings as CXR_* variables (the service may have been built from a
Settings object, not the environment), runs in the job's folder (so no stray .env is read) and in a
session of its own, so that a restart of the service does not take a running job with it.
"""

from __future__ import annotations

import os

# bandit B404 accepted: our own module, fixed arguments, no shell
import subprocess  # nosec B404
import sys
import threading
from pathlib import Path

from ..config import Settings

RUNNER = [sys.executable, "-m", "cxr_pneumonia.jobs.runner"]


def settings_env(settings: Settings) -> dict[str, str]:
    """Every set value of ``settings`` as the CXR_* variable that gives it back (paths absolute)."""
    env: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None or field.validation_alias is not None:
            continue  # unset, or not a CXR_ variable (PROMETHEUS_MULTIPROC_DIR)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, Path):
            text = str(value.resolve())
        else:
            text = str(value)
        env[f"CXR_{name.upper()}"] = text
    return env


def launch(settings: Settings, job_id: str) -> subprocess.Popen[bytes]:
    work_dir = settings.resolved_jobs_dir.resolve() / job_id
    work_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXR_")}
    env.update(settings_env(settings))
    with (work_dir / "runner.log").open("ab") as log:
        # bandit B603 accepted: fixed program, a job id the service made
        process = subprocess.Popen(  # nosec B603
            [*RUNNER, job_id],
            cwd=work_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # reap it when it ends, so that an ended runner is not left a zombie whose pid still answers
    threading.Thread(target=process.wait, name=f"job-{job_id[:8]}", daemon=True).start()
    return process
