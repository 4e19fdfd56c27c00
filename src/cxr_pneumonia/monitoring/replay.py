"""``cxr monitor replay``: images through the same detector, source after source, to measure it
offline (detection delay, false alarms) or to check it on a site's own archive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CXRError, DataError
from ..inference import Predictor
from ..inference.inputs import expand_inputs
from .detector import Detector, DriftConfig
from .reference import Reference
from .sample import Sample, refused_sample
from .window import MemoryWindow

DEFAULT_SEED = 20261201


@dataclass
class ReplayResult:
    images: int = 0
    sources: list[dict[str, Any]] = field(default_factory=list)
    first_alarm: dict[str, int | None] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    alarmed_inputs: dict[str, int] = field(default_factory=dict)  # per kind: inputs seen while it alarmed

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "sources": self.sources,
            "tests": [
                {"name": name, "kind": self.kinds[name], "first_alarm": first}
                for name, first in self.first_alarm.items()
            ],
        }


def ordered_sources(sources: Sequence[str], *, seed: int, shuffle: bool) -> list[tuple[str, list[Path]]]:
    """Each source's files, shuffled with the seed (one generator for all sources, in order)."""
    rng = np.random.default_rng(seed)
    ordered = []
    for source in sources:
        files, problems = expand_inputs([source])
        if problems or not files:
            raise DataError(f"{source}: {'; '.join(problems) or 'no image files'}", code="data_not_found")
        if shuffle:
            files = [files[i] for i in rng.permutation(len(files))]
        ordered.append((source, files))
    return ordered


def replay(
    predictor: Predictor,
    reference: Reference,
    sources: Sequence[str],
    *,
    config: DriftConfig | None = None,
    seed: int = DEFAULT_SEED,
    shuffle: bool = True,
) -> ReplayResult:
    window = MemoryWindow(Detector(reference, config or DriftConfig()))
    result = ReplayResult()
    ordered = ordered_sources(sources, seed=seed, shuffle=shuffle)
    for source, files in ordered:
        result.sources.append({"path": source, "start": result.images, "count": len(files)})
        for prediction in predictor.iter_predict(files, heatmap=False):
            sample: Sample
            if isinstance(prediction, CXRError):
                sample = refused_sample(str(getattr(prediction, "reason", prediction.code)), "replay")
            else:
                sample = reference.sample(prediction, "replay")
            tests = window.add(sample)
            for test in tests or ():
                result.kinds[test.name] = test.kind
                result.first_alarm.setdefault(test.name, None)
                if test.alarm and result.first_alarm[test.name] is None:
                    result.first_alarm[test.name] = result.images
            alarmed = {t.kind for t in (tests or ()) if t.alarm}
            for kind in alarmed:
                result.alarmed_inputs[kind] = result.alarmed_inputs.get(kind, 0) + 1
            result.images += 1
    return result
