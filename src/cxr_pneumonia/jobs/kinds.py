"""What each kind of job accepts and which `cxr` commands it runs.

recalibrate: the served package refitted on the store's reviewed cases (`cxr recalibrate
--from-reviews`): NumPy only, so every install offers it. train and tune need PyTorch (the ``train``
extra) and read a dataset the server may read: only under CXR_JOB_DATA_ROOTS.
"""

from __future__ import annotations

import importlib.util

# bandit B404 accepted: our own CLI, fixed arguments, no shell
import subprocess  # nosec B404
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import Settings
from ..data.catalog import csv_image_paths
from ..errors import DataError
from .errors import JobRejected, JobUnavailable

KINDS = ("recalibrate", "train", "tune")
CLI = [sys.executable, "-m", "cxr_pneumonia.cli"]
SERVING_ONLY = (
    "this install has no PyTorch (the serving image): it offers recalibrate jobs only;"
    " train and tune run where the train extra is installed"
)
# The parameters each kind takes (anything else is refused, not ignored).
ALLOWED = {
    "recalibrate": {"holdout", "seed", "version"},
    "train": {"data", "config", "epochs", "max_images"},
    "tune": {"data", "config", "trials", "timeout"},
}


@dataclass(frozen=True)
class Plan:
    """The commands of a job, in order, and where its output goes."""

    commands: list[list[str]]
    package_dir: Path | None  # a model package the job writes (None: tune writes a config)
    result_json: Path | None  # the recalibration's evaluation


def has_torch() -> bool:
    return importlib.util.find_spec("torch") is not None


@lru_cache(maxsize=1)
def has_tune_command() -> bool:
    """`cxr tune` exists in this install (it comes with the tuning work, issue 18)."""
    try:
        # bandit B603 accepted: fixed arguments
        done = subprocess.run(  # nosec B603
            [*CLI, "tune", "--help"], capture_output=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _inside_roots(settings: Settings, value: Any, what: str) -> Path:
    roots = settings.job_data_root_paths
    if not roots:
        raise JobRejected(f"no dataset may be read by jobs: set CXR_JOB_DATA_ROOTS to allow {what}s")
    if not isinstance(value, str) or not value:
        raise JobRejected(f"{what} must be a path")
    path = Path(value).resolve()
    if not _within(path, roots):
        raise JobRejected(f"{what} {value} is outside the allowed dataset roots (CXR_JOB_DATA_ROOTS)")
    if not path.exists():
        raise JobRejected(f"{what} {value} does not exist")
    return path


def _within(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == root or root in resolved.parents for root in roots)


def _dataset(settings: Settings, value: Any) -> Path:
    """A dataset folder or CSV under the roots; a CSV's images must be under them too (a CSV could
    otherwise name any file the server can read)."""
    path = _inside_roots(settings, value, "data")
    if path.is_file():
        try:
            images = csv_image_paths(path)
        except DataError as exc:
            raise JobRejected(f"data {value}: {exc.detail}") from None
        outside = [p for p in images if not _within(p, settings.job_data_root_paths)]
        if outside:
            raise JobRejected(
                f"data {value} lists {len(outside)} images outside the allowed dataset roots"
                f" (CXR_JOB_DATA_ROOTS), e.g. {outside[0]}"
            )
    return path


def _int(params: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise JobRejected(f"{name} must be a whole number from {low} to {high}")
    return value


def validate(settings: Settings, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The job's parameters, checked (paths resolved); JobRejected / JobUnavailable otherwise."""
    if kind not in KINDS:
        raise JobRejected(f"kind must be one of {', '.join(KINDS)}")
    unknown = sorted(set(params) - ALLOWED[kind])
    if unknown:
        raise JobRejected(f"a {kind} job takes no {', '.join(unknown)}")
    if kind == "recalibrate":
        holdout = params.get("holdout", 0.3)
        if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout <= 0.5:
            raise JobRejected("holdout must be a number from 0 to 0.5")
        version = params.get("version")
        if version is not None and (not isinstance(version, str) or not 0 < len(version) <= 64):
            raise JobRejected("version must be a short text")
        return {"holdout": float(holdout), "seed": _int(params, "seed", 0, 2**31) or 0, "version": version}
    checked: dict[str, Any] = {"data": str(_dataset(settings, params.get("data")))}
    if params.get("config") is not None:
        checked["config"] = str(_inside_roots(settings, params["config"], "config"))
    if kind == "train":
        checked.update(
            epochs=_int(params, "epochs", 1, 1000), max_images=_int(params, "max_images", 1, 10**7)
        )
    else:
        if "config" not in checked:
            raise JobRejected("a tune job needs config (the base YAML with its search space)")
        checked.update(
            trials=_int(params, "trials", 1, 1000) or 10, timeout=_int(params, "timeout", 1, 7 * 86400)
        )
    if not has_torch():
        raise JobUnavailable(SERVING_ONLY)
    if kind == "tune" and not has_tune_command():
        raise JobUnavailable("`cxr tune` is not part of this install: tune jobs are unavailable")
    return checked


def plan(kind: str, params: dict[str, Any], work_dir: Path) -> Plan:
    """The `cxr` commands for a validated job; outputs under ``work_dir``. A recalibration's
    ``params["model"]`` is the package the service was serving as champion when it was started."""
    if kind == "recalibrate":
        out, result = work_dir / "package", work_dir / "result.json"
        command = [*CLI, "recalibrate", "--from-reviews", "--model", params["model"], "--out", str(out)]
        command += [
            "--holdout",
            str(params["holdout"]),
            "--seed",
            str(params["seed"]),
            "--result-json",
            str(result),
        ]
        if params.get("version"):
            command += ["--version", params["version"]]
        return Plan([command], out, result)
    if kind == "train":
        run = work_dir / "run"
        command = [*CLI, "train", "--data", params["data"], "--out", str(run)]
        for name in ("config", "epochs", "max_images"):
            if params.get(name) is not None:
                command += [f"--{name.replace('_', '-')}", str(params[name])]
        return Plan([command], run / "package", None)
    command = [*CLI, "tune", "--data", params["data"], "--config", params["config"]]
    command += ["--trials", str(params["trials"]), "--out", str(work_dir / "tune")]
    if params.get("timeout") is not None:
        command += ["--timeout", str(params["timeout"])]
    return Plan([command], None, None)
