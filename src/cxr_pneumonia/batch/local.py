"""The local engine: the Predictor's own pool (decoders ahead of one ONNX Runtime session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..inference import Predictor
from ..inference.output import write_heatmap
from ..inference.prediction import Prediction
from .rows import result_row
from .sources import Item


def read_local(
    items: list[Item], predictor: Predictor, *, heatmaps: Path | None, batch_size: int
) -> Iterator[dict[str, Any]]:
    results = predictor.iter_predict(
        [i.path for i in items], heatmap=heatmaps is not None, batch_size=batch_size
    )
    for item, result in zip(items, results, strict=True):
        if heatmaps is not None and isinstance(result, Prediction):
            write_heatmap(item.path, result, heatmaps)
        yield result_row(item.path, item.sha256, result)
