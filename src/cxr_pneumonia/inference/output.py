"""How `cxr predict` shows results: table, JSON or CSV, and heatmap overlays on disk."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CXRError, RejectedImage
from .prediction import OUTSIDE_POPULATION_HEADLINE, Prediction


@dataclass(frozen=True)
class PredictOutcome:
    path: Path
    prediction: Prediction | None
    error: CXRError | None

    @classmethod
    def of(cls, path: Path, result: Prediction | CXRError) -> PredictOutcome:
        if isinstance(result, Prediction):
            return cls(path, result, None)
        return cls(path, None, result)

    @property
    def status(self) -> str:
        if self.prediction is not None:
            return "ok"
        return "refused" if isinstance(self.error, RejectedImage) else "failed"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": str(self.path), "status": self.status}
        if self.prediction is not None:
            data.update(self.prediction.to_dict())
        if self.error is not None:
            data["error"] = self.error.code
            data["reason"] = getattr(self.error, "reason", self.error.code)
            data["detail"] = self.error.detail
        return data

    @staticmethod
    def summary(outcomes: list[PredictOutcome]) -> dict[str, int]:
        ok = [o.prediction for o in outcomes if o.prediction is not None]
        return {
            "total": len(outcomes),
            "pneumonia": sum(1 for p in ok if p.label == "pneumonia"),
            "normal": sum(1 for p in ok if p.label == "normal"),
            "refer": sum(1 for p in ok if p.refer),
            "refused": sum(1 for o in outcomes if o.status == "refused"),
            "failed": sum(1 for o in outcomes if o.status == "failed"),
            # answered with no refer flag: what a reader would take at face value
            "unflagged": sum(1 for p in ok if not p.refer),
        }


CSV_FIELDS = (
    "path",
    "status",
    "label",
    "p_pneumonia",
    "subtype",
    "p_bacterial",
    "p_viral",
    "refer",
    "ood_score",
    "reason",
    "model",
)


def render(outcomes: list[PredictOutcome], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            {"results": [o.to_dict() for o in outcomes], "summary": PredictOutcome.summary(outcomes)},
            indent=2,
        )
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_FIELDS)
        for o in outcomes:
            p = o.prediction
            writer.writerow(
                [
                    o.path,
                    o.status,
                    p.label if p else "",
                    f"{p.p_pneumonia:.6f}" if p else "",
                    (p.subtype or "") if p else "",
                    f"{p.p_bacterial:.6f}" if p else "",
                    f"{p.p_viral:.6f}" if p else "",
                    p.refer if p else "",
                    f"{p.ood_score:.3f}" if p else "",
                    getattr(o.error, "reason", o.error.code) if o.error else "",
                    p.model.model_id if p else "",
                ]
            )
        return buffer.getvalue()
    return _table(outcomes)


def _table(outcomes: list[PredictOutcome]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(caption="Decision support, not a diagnosis.")
    for column in ("file", "result", "p(pneumonia)", "subtype", "refer", "note"):
        table.add_column(column)
    for o in outcomes:
        p = o.prediction
        if p is not None:
            subtype = (
                f"{p.subtype} ({p.subtype_confidence:.0%})" if p.subtype and p.subtype_confidence else ""
            )
            note = "; ".join(f.code for f in p.findings)
            # Outside the training population the warning leads; the model's label comes after it.
            result = (
                f"[bold]{OUTSIDE_POPULATION_HEADLINE}[/] (model: {p.label})"
                if p.outside_population
                else p.label
            )
            table.add_row(
                str(o.path), result, f"{p.p_pneumonia:.3f}", subtype, "REFER" if p.refer else "", note
            )
        else:
            assert o.error is not None
            table.add_row(str(o.path), o.status, "", "", "", o.error.detail)
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def write_heatmap(path: Path, prediction: Prediction, out_dir: Path) -> Path:
    """<out_dir>/<file name>.heatmap.png: the radiograph with the heatmap over it."""
    from ..imaging import load
    from .heatmap import overlay_png

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{path.name}.heatmap.png"
    if prediction.heatmap is not None:
        target.write_bytes(overlay_png(load(path), prediction.heatmap))
    return target
