"""What a registered version says about its package, as MLflow tags (all strings)."""

from __future__ import annotations

import json
from typing import Any

from ..package import PackageManifest
from .reader import DIGEST_TAG

EVAL_PREFIX = "cxr.eval."
HEADLINE = ("auroc", "sensitivity", "specificity", "ece")


def headline_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """AUROC, sensitivity and specificity at the operating point, and ECE of a recorded evaluation."""
    metrics = evaluation.get("metrics", evaluation)  # a format-1 evaluation kept them at its top level
    binary = metrics.get("pneumonia", {})
    found = {
        "auroc": binary.get("auroc"),
        "sensitivity": binary.get("sensitivity"),
        "specificity": binary.get("specificity"),
        "ece": metrics.get("ece"),
    }
    return {k: float(v) for k, v in found.items() if isinstance(v, int | float)}


def package_tags(manifest: PackageManifest) -> dict[str, str]:
    tags = {
        DIGEST_TAG: manifest.digest,
        "cxr.package_name": manifest.name,
        "cxr.package_version": manifest.version,
        "cxr.dataset_version": str(manifest.training.get("dataset_version", "")),
        **data_version_tags(manifest.training.get("dataset_dvc")),
        "cxr.parent_digest": str((manifest.parent or {}).get("digest", "")),
        "cxr.code_version": manifest.code_version,
    }
    for key, evaluation in sorted(manifest.evaluations.items()):
        for metric, value in headline_metrics(evaluation).items():
            tags[f"{EVAL_PREFIX}{key}.{metric}"] = repr(value)
    return tags


def data_version_tags(dvc: Any) -> dict[str, str]:
    """The DVC version of the training data (model.json training.dataset_dvc), when it had one."""
    if not isinstance(dvc, dict) or not dvc.get("md5"):
        return {}
    revision = str(dvc.get("git_revision") or "")
    return {
        "cxr.dataset_dvc_md5": str(dvc["md5"]),
        "cxr.dataset_git_revision": revision + ("+dirty" if revision and dvc.get("git_dirty") else ""),
    }


def evaluations_from_tags(tags: dict[str, str]) -> dict[str, dict[str, float]]:
    """{"<dataset_version>/<split>": {metric: value}} back from the tags."""
    out: dict[str, dict[str, float]] = {}
    for key, value in tags.items():
        if key.startswith(EVAL_PREFIX):
            evaluation, _, metric = key.removeprefix(EVAL_PREFIX).rpartition(".")
            out.setdefault(evaluation, {})[metric] = float(value)
    return out


def history_tag(alias: str) -> str:
    return f"cxr.alias_history.{alias}"


def read_history(tags: dict[str, str], alias: str) -> list[str]:
    return [str(v) for v in json.loads(tags.get(history_tag(alias), "[]"))]
