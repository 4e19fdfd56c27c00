"""One flat result row per input: the same for the local pool and Ray, for JSON lines and Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CXRError, RejectedImage
from ..inference.prediction import Prediction

# Column -> Parquet type. Flat on purpose: every row has every column (None where it does not apply),
# so the parts of a Parquet output share one schema and a row reads the same in any tool.
FIELDS: dict[str, str] = {
    "path": "string",
    "sha256": "string",
    "status": "string",  # ok | refused | failed
    "label": "string",
    "p_pneumonia": "float64",
    "subtype": "string",
    "p_bacterial": "float64",
    "p_viral": "float64",
    "refer": "bool_",
    "ood_score": "float64",
    "findings": "string",  # quality finding codes, "; "-joined
    "error": "string",
    "reason": "string",
    "detail": "string",
    "model": "string",  # name:version
    "model_digest": "string",
}


def arrow_schema(pyarrow: Any) -> Any:
    """FIELDS as a pyarrow schema (pyarrow passed in: it is optional, imported by the caller)."""
    return pyarrow.schema([(name, getattr(pyarrow, kind)()) for name, kind in FIELDS.items()])


def result_row(path: Path | str, sha256: str, result: Prediction | CXRError) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(FIELDS)
    row.update(path=str(path), sha256=sha256)
    if isinstance(result, Prediction):
        row.update(
            status="ok",
            label=result.label,
            p_pneumonia=result.p_pneumonia,
            subtype=result.subtype,
            p_bacterial=result.p_bacterial,
            p_viral=result.p_viral,
            refer=result.refer,
            ood_score=result.ood_score,
            findings="; ".join(f.code for f in result.findings),
            model=result.model.model_id,
            model_digest=result.model.digest,
        )
    else:
        row.update(
            status="refused" if isinstance(result, RejectedImage) else "failed",
            error=result.code,
            reason=getattr(result, "reason", result.code),
            detail=result.detail,
        )
    return row


def failed_row(path: Path | str, sha256: str, exc: BaseException) -> dict[str, Any]:
    """An input the engine could not even hand to the Predictor (e.g. unreadable): a failed row."""
    return result_row(path, sha256, CXRError(f"{type(exc).__name__}: {exc}", code="unreadable"))


def tally(counts: dict[str, int], row: dict[str, Any]) -> None:
    """Count a row into the job's summary (the same keys as `cxr predict`'s)."""
    for key in ("total", "pneumonia", "normal", "refer", "refused", "failed", "unflagged"):
        counts.setdefault(key, 0)
    counts["total"] += 1
    if row["status"] == "ok":
        counts[row["label"]] = counts.get(row["label"], 0) + 1
        counts["refer"] += bool(row["refer"])
        counts["unflagged"] += not row["refer"]
    else:
        counts[row["status"]] += 1
