"""The promotion gate: a candidate replaces the champion only when, on the site's evaluation set, it
is not worse on AUROC, sensitivity at the operating point and ECE beyond the Settings' tolerances."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reason: str
    evaluation: str  # the "<dataset_version>/<split>" the two were compared on
    candidate: dict[str, float]
    champion: dict[str, float]


def evaluation_key(settings: Settings, champion_dataset_version: str) -> str:
    version = settings.evaluation_dataset_version or champion_dataset_version
    return f"{version}/{settings.evaluation_split}"


def check(
    settings: Settings,
    key: str,
    candidate: dict[str, dict[str, float]],
    champion: dict[str, dict[str, float]],
) -> GateResult:
    """Compare the two versions' recorded evaluations under ``key``."""
    mine, theirs = candidate.get(key), champion.get(key)

    def result(passed: bool, reason: str) -> GateResult:
        return GateResult(passed, reason, key, mine or {}, theirs or {})

    if theirs is None:
        return result(False, f"the champion has no evaluation recorded on {key}")
    if mine is None:
        return result(False, f"the candidate has no evaluation recorded on {key} (cxr evaluate --record)")
    # (metric, higher is better, tolerance)
    rules = (
        ("auroc", True, settings.gate_auroc_tolerance),
        ("sensitivity", True, settings.gate_sensitivity_tolerance),
        ("ece", False, settings.gate_ece_tolerance),
    )
    worse = []
    for metric, higher_better, tolerance in rules:
        if metric not in mine or metric not in theirs:
            return result(False, f"{metric} is not recorded on {key} for both versions")
        loss = (theirs[metric] - mine[metric]) if higher_better else (mine[metric] - theirs[metric])
        if loss > tolerance:
            worse.append(
                f"{metric} {mine[metric]:.4f} vs champion {theirs[metric]:.4f} (tolerance {tolerance})"
            )
    if worse:
        return result(False, f"worse than the champion on {key}: " + "; ".join(worse))
    return result(True, f"not worse than the champion on {key} beyond the tolerances")
