"""One compact row per input the monitor saw: what the drift tests compare, and nothing identifying."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..inference.prediction import Prediction

# Numeric input statistics, compared by a KS test each. ``side`` is sqrt(pixels): the image size.
INPUT_NUMERIC = ("mean", "std", "p05", "p50", "p95", "side", "aspect", "age")
# Categorical input statistics, compared by a chi-square test each.
INPUT_CATEGORICAL = ("format", "bit_depth", "modality", "view")


@dataclass(frozen=True)
class Sample:
    accepted: bool
    source: str = "api"
    reason: str | None = None  # why a refused input was refused
    numeric: dict[str, float] = field(default_factory=dict)  # a missing statistic is absent
    categorical: dict[str, str] = field(default_factory=dict)
    projection: tuple[float, ...] | None = None  # the reference's PCA of the pooled features
    ood: float | None = None
    p: float | None = None  # calibrated p(pneumonia)
    label: str | None = None
    refer: bool | None = None
    subtype: str | None = None

    def to_row(self) -> dict[str, Any]:
        """The JSON kept in the database (about 300 bytes)."""
        row: dict[str, Any] = {"a": self.accepted, "s": self.source}
        if self.reason is not None:
            row["r"] = self.reason
        if self.numeric:
            row["n"] = {k: round(v, 6) for k, v in self.numeric.items()}
        if self.categorical:
            row["c"] = self.categorical
        if self.projection is not None:
            row["f"] = [round(v, 5) for v in self.projection]
        for key, value in (("o", self.ood), ("p", self.p)):
            if value is not None:
                row[key] = round(value, 6)
        for key, text in (("l", self.label), ("t", self.subtype)):
            if text is not None:
                row[key] = text
        if self.refer is not None:
            row["x"] = self.refer
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Sample:
        projection = row.get("f")
        return cls(
            accepted=bool(row["a"]),
            source=str(row.get("s", "api")),
            reason=row.get("r"),
            numeric={str(k): float(v) for k, v in row.get("n", {}).items()},
            categorical={str(k): str(v) for k, v in row.get("c", {}).items()},
            projection=tuple(float(v) for v in projection) if projection is not None else None,
            ood=row.get("o"),
            p=row.get("p"),
            label=row.get("l"),
            refer=row.get("x"),
            subtype=row.get("t"),
        )


def input_statistics(meta: dict[str, Any], intensity: dict[str, float] | None) -> tuple[dict, dict]:
    """(numeric, categorical) input statistics from a prediction's input_meta and intensity summary."""
    numeric: dict[str, float] = dict(intensity or {})
    width, height = int(meta.get("width") or 0), int(meta.get("height") or 0)
    if width and height:
        numeric["side"] = math.sqrt(width * height)
        numeric["aspect"] = width / height
    if meta.get("patient_age_years") is not None:
        numeric["age"] = float(meta["patient_age_years"])
    categorical = {"format": str(meta.get("format") or "unknown"), "bit_depth": str(meta.get("bit_depth"))}
    if meta.get("modality"):
        categorical["modality"] = str(meta["modality"]).upper()
    if meta.get("view_position"):
        categorical["view"] = str(meta["view_position"]).upper()
    return numeric, categorical


def accepted_sample(prediction: Prediction, source: str, projection: np.ndarray | None = None) -> Sample:
    numeric, categorical = input_statistics(prediction.input_meta, prediction.intensity)
    return Sample(
        accepted=True,
        source=source,
        numeric=numeric if prediction.intensity is not None else {},
        categorical=categorical,
        projection=tuple(float(v) for v in projection) if projection is not None else None,
        ood=float(prediction.ood_score),
        p=float(prediction.p_pneumonia),
        label=prediction.label,
        refer=bool(prediction.refer),
        subtype=prediction.subtype,
    )


def refused_sample(reason: str, source: str) -> Sample:
    return Sample(accepted=False, source=source, reason=reason)
