"""The drift tests on one window of samples, their correction per kind, and the alarm rule.

Kinds: ``input`` (intensity statistics, image size, format, DICOM modality/view/age), ``feature``
(MMD on the PCA projection of pooled features, KS on the OOD score), ``output`` (p(pneumonia), the
pneumonia label rate, the subtype mix) and ``rate`` (refer rate, refusal rate). Within a kind the
p-values are Holm-corrected; a test alarms when its corrected p stays under alpha for ``persistence``
consecutive evaluations (one evaluation every ``eval_every`` inputs, on the last ``window`` inputs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import Settings
from .reference import Reference
from .sample import INPUT_CATEGORICAL, INPUT_NUMERIC, Sample
from .stats import MMDTest, chi_square_test, holm, ks_test, proportion_test

KINDS = ("input", "feature", "output", "rate")


@dataclass(frozen=True)
class DriftConfig:
    window: int = 50  # inputs per window (the newest ones)
    window_seconds: float = 86_400.0  # and none older than this
    min_count: int = 30  # a test needs at least this many values in the window
    eval_every: int = 5  # evaluate after this many new inputs ...
    eval_seconds: float = 60.0  # ... or this long after the last evaluation, whichever comes first
    alpha: float = 0.01  # family-wise, per kind, after Holm
    persistence: int = 3  # consecutive significant evaluations before a test alarms

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftConfig:
        return cls(
            window=settings.monitoring_window,
            window_seconds=settings.monitoring_window_seconds,
            min_count=settings.monitoring_min_count,
            eval_every=settings.monitoring_eval_every,
            eval_seconds=settings.monitoring_eval_seconds,
            alpha=settings.monitoring_alpha,
            persistence=settings.monitoring_persistence,
        )


@dataclass
class TestResult:
    name: str
    kind: str
    n: int
    statistic: float | None = None
    p_value: float | None = None  # None: not enough data in the window (or nothing to compare)
    p_adjusted: float | None = None
    significant: bool = False
    streak: int = 0  # consecutive significant evaluations, this one included
    alarm: bool = False
    window_value: float | None = None  # e.g. the window's rate, for rates and proportions
    reference_value: float | None = None

    @property
    def score(self) -> float:
        """-log10 of the corrected p-value (0 when untested): what cxr_drift_score reports."""
        if self.p_adjusted is None:
            return 0.0
        return float(-math.log10(max(self.p_adjusted, 1e-300)))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "score": round(self.score, 4)}


Check = Callable[[Sequence[Sample]], TestResult]


class Detector:
    """The tests a reference supports, run on one window."""

    def __init__(self, reference: Reference, config: DriftConfig) -> None:
        self.reference = reference
        self.config = config
        # Feature drift is tested within each predicted label: a window with more normals than the
        # reference (a prevalence shift, which the output tests report) is not a change of the images.
        blocks = reference.blocks
        self.mmd = {
            label: MMDTest(reference.features[mask], blocks=None if blocks is None else blocks[mask])
            for label, mask in (("normal", ~reference.pneumonia), ("pneumonia", reference.pneumonia))
            if mask.sum() >= 2 * config.min_count
        }

    def evaluate(self, window: Sequence[Sample], previous: dict[str, int] | None = None) -> list[TestResult]:
        """Every test on the window; ``previous`` maps test name to its streak before this evaluation."""
        results = [
            *self._input(window),
            *self._features(window),
            *self._outputs(window),
            *self._rates(window),
        ]
        for kind in KINDS:
            tested = [r for r in results if r.kind == kind and r.p_value is not None]
            for result, adjusted in zip(tested, holm([r.p_value for r in tested]), strict=True):  # type: ignore[misc]
                result.p_adjusted = adjusted
                result.significant = adjusted < self.config.alpha
        for result in results:
            before = (previous or {}).get(result.name, 0)
            result.streak = before + 1 if result.significant else 0
            result.alarm = result.streak >= self.config.persistence
        return results

    # ---- each kind ----------------------------------------------------------------------------
    def _input(self, window: Sequence[Sample]) -> list[TestResult]:
        accepted = [s for s in window if s.accepted]
        results = []
        for name in INPUT_NUMERIC:
            values = np.array([s.numeric[name] for s in accepted if name in s.numeric])
            reference = self.reference.numeric.get(name, np.empty(0))
            result = TestResult(f"input_{name}", "input", int(values.size))
            if values.size >= self.config.min_count and reference.size >= self.config.min_count:
                result.statistic, result.p_value = ks_test(reference, values)
                result.window_value, result.reference_value = (
                    float(np.median(values)),
                    float(np.median(reference)),
                )
            results.append(result)
        for name in INPUT_CATEGORICAL:
            seen = [s.categorical[name] for s in accepted if name in s.categorical]
            result = TestResult(f"input_{name}", "input", len(seen))
            counts = self.reference.categorical.get(name, {})
            if len(seen) >= self.config.min_count and counts:
                result.statistic, result.p_value = chi_square_test(counts, seen)
            results.append(result)
        return results

    def _features(self, window: Sequence[Sample]) -> list[TestResult]:
        results = []
        for label, test in self.mmd.items():
            projected = [
                s.projection for s in window if s.accepted and s.projection is not None and s.label == label
            ]
            mmd = TestResult(f"feature_mmd_{label}", "feature", len(projected))
            if len(projected) >= max(10, self.config.min_count // 2):
                mmd.statistic, mmd.p_value = test.test(np.array(projected, dtype=np.float64))
            results.append(mmd)
        ood = self._ks(
            "feature_ood_score", "feature", [s.ood for s in window if s.accepted], self.reference.ood
        )
        return [*results, ood]

    def _outputs(self, window: Sequence[Sample]) -> list[TestResult]:
        accepted = [s for s in window if s.accepted]
        p = self._ks("output_p_pneumonia", "output", [s.p for s in accepted], self.reference.p)
        label = self._rate(
            "output_pneumonia_rate", "output", "pneumonia", [s.label == "pneumonia" for s in accepted]
        )
        subtypes = [s.subtype for s in accepted if s.subtype]
        mix = TestResult("output_subtype_mix", "output", len(subtypes))
        if len(subtypes) >= self.config.min_count and self.reference.subtypes:
            mix.statistic, mix.p_value = chi_square_test(self.reference.subtypes, subtypes)
        return [p, label, mix]

    def _rates(self, window: Sequence[Sample]) -> list[TestResult]:
        accepted = [s for s in window if s.accepted]
        return [
            self._rate("rate_refer", "rate", "refer", [bool(s.refer) for s in accepted]),
            self._rate("rate_refusal", "rate", "refusal", [not s.accepted for s in window]),
        ]

    # ---- helpers ------------------------------------------------------------------------------
    def _ks(self, name: str, kind: str, values: Sequence[float | None], reference: np.ndarray) -> TestResult:
        array = np.array([v for v in values if v is not None], dtype=np.float64)
        result = TestResult(name, kind, int(array.size))
        if array.size >= self.config.min_count:
            result.statistic, result.p_value = ks_test(reference, array)
            result.window_value, result.reference_value = float(np.median(array)), float(np.median(reference))
        return result

    def _rate(self, name: str, kind: str, rate: str, flags: Sequence[bool]) -> TestResult:
        result = TestResult(name, kind, len(flags))
        reference_rate = self.reference.rates[rate]
        if flags:
            result.window_value = sum(flags) / len(flags)
            result.reference_value = reference_rate
        if len(flags) >= self.config.min_count:
            result.statistic, result.p_value = proportion_test(
                reference_rate,
                int(self.reference.info.get("images", self.reference.size)),
                sum(flags),
                len(flags),
            )
        return result


def summarise(results: Sequence[TestResult]) -> dict[str, dict[str, float | bool]]:
    """Per kind: the highest score and whether any of its tests alarms (what the gauges show)."""
    return {
        kind: {
            "score": max((r.score for r in results if r.kind == kind), default=0.0),
            "alarm": any(r.alarm for r in results if r.kind == kind),
        }
        for kind in KINDS
    }
