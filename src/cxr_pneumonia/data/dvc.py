"""The DVC version of a dataset: the md5 DVC recorded for it and the git revision of its repository.

Read from the YAML files DVC writes (a ``<dataset>.dvc`` file beside the folder, or a ``dvc.lock``
stage output naming it); DVC itself is never imported. The manifest hash (catalog.Manifest.version_id)
says what was read; this says which committed DVC version it came from (docs/data.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

# How far above the dataset a tracking file may sit (a subfolder of a tracked folder: its md5 is the
# tracked folder's). The search also stops at the DVC repository's root (the folder holding .dvc/).
_MAX_LEVELS = 4


@dataclass(frozen=True)
class DvcVersion:
    md5: str  # as DVC writes it: "<md5>.dir" for a folder
    tracked_path: str  # what the md5 is of (absolute), the dataset itself or a folder holding it
    source: str  # the .dvc file or dvc.lock it was read from (absolute)
    stage: str | None  # the dvc.lock stage, None for a .dvc file
    nfiles: int | None
    size: int | None
    git_revision: str | None  # HEAD of the repository holding the tracking file; None: not in git
    git_dirty: bool | None  # uncommitted changes to tracked files, or a tracking file git does not hold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dvc_version(source: Path) -> DvcVersion | None:
    """The DVC version of a dataset folder or CSV, or None when no DVC file names it."""
    target = Path(os.path.abspath(source))
    candidates = [target, *list(target.parents)[:_MAX_LEVELS]]
    for path in candidates:
        found = _from_dvc_file(path) or _from_lock(path, path.parent) or _from_lock(path, path)
        if found is not None:
            return found
        if (path / ".dvc").is_dir():  # the repository's root: nothing above it tracks this data
            break
    return None


def _from_dvc_file(path: Path) -> DvcVersion | None:
    dvc_file = path.parent / f"{path.name}.dvc"
    if not dvc_file.is_file():
        return None
    out = _out_named(_outs(_load(dvc_file)), path, dvc_file.parent)
    return _version(out, path, dvc_file, None) if out else None


def _from_lock(path: Path, folder: Path) -> DvcVersion | None:
    lock = folder / "dvc.lock"
    if not lock.is_file():
        return None
    stages = _load(lock).get("stages") or {}
    if not isinstance(stages, dict):
        return None
    for name, stage in stages.items():
        out = _out_named(_outs(stage), path, lock.parent)
        if out:
            return _version(out, path, lock, str(name))
    return None


def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}  # a file we cannot read names no version; the manifest hash still stands
    return data if isinstance(data, dict) else {}


def _outs(entry: Any) -> list[dict[str, Any]]:
    outs = entry.get("outs") if isinstance(entry, dict) else None
    return [o for o in outs if isinstance(o, dict)] if isinstance(outs, list) else []


def _out_named(outs: list[dict[str, Any]], path: Path, base: Path) -> dict[str, Any] | None:
    """The output whose path (relative to the tracking file's folder) is ``path``, with an md5."""
    for out in outs:
        named = out.get("path")
        if isinstance(named, str) and Path(os.path.normpath(base / named)) == path and out.get("md5"):
            return out
    return None


def _version(out: dict[str, Any], path: Path, source: Path, stage: str | None) -> DvcVersion:
    revision, dirty = _git_state(source)
    return DvcVersion(
        md5=str(out["md5"]),
        tracked_path=str(path),
        source=str(source),
        stage=stage,
        nfiles=_int(out.get("nfiles")),
        size=_int(out.get("size")),
        git_revision=revision,
        git_dirty=dirty,
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _git_state(tracking_file: Path) -> tuple[str | None, bool | None]:
    """(HEAD, dirty) of the git repository holding the tracking file; (None, None) outside git."""
    folder = str(tracking_file.parent)
    head = _git(folder, "rev-parse", "HEAD")
    if head is None:
        return None, None
    changed = _git(folder, "status", "--porcelain", "--untracked-files=no")
    # The tracking file itself untracked or modified: the md5 in it is not the committed one.
    own = _git(folder, "status", "--porcelain", "--untracked-files=all", "--", tracking_file.name)
    return head, bool(changed) or bool(own)


def _git(folder: str, *args: str) -> str | None:
    # bandit B404/B603 accepted: git only, fixed arguments, no shell.
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # nosec B603
            [git, "-C", folder, *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
