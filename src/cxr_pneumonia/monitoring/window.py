"""A sliding window in memory: what ``cxr monitor replay`` runs, and the rule the online monitor follows."""

from __future__ import annotations

from collections import deque

from .detector import Detector, TestResult
from .sample import Sample


class MemoryWindow:
    """The newest ``config.window`` samples; every ``config.eval_every`` samples, the tests run."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.samples: deque[Sample] = deque(maxlen=detector.config.window)
        self.streaks: dict[str, int] = {}
        self._since = 0

    def add(self, sample: Sample) -> list[TestResult] | None:
        """Append one sample; the test results when an evaluation was due, else None."""
        self.samples.append(sample)
        self._since += 1
        if self._since < self.detector.config.eval_every:
            return None
        self._since = 0
        results = self.detector.evaluate(list(self.samples), self.streaks)
        self.streaks = {r.name: r.streak for r in results}
        return results
