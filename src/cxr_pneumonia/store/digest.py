"""Canonical JSON and the digest of a prediction record: what the audit chain and the records share.

Here, not in either of them, so that records (which seal a digest into each row) and the audit chain
(which checks it) both import this and neither imports the other.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from .db.base import iso
from .db.models import PredictionRecord


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def json_safe(value: Any) -> Any:
    """What a JSON column will give back: plain types only, non-finite floats as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def prediction_digest(row: PredictionRecord) -> str:
    """sha256 over everything a prediction record asserts; its audit event keeps a copy."""
    body = {
        "id": row.id,
        "created_at": iso(row.created_at),
        "caller": row.caller,
        "source": row.source,
        "client": row.client,
        "request_id": row.request_id,
        "input_sha256": row.input_sha256,
        "model": [row.model_name, row.model_version, row.model_sha256, row.preprocess_version],
        "label": row.label,
        "p": [row.p_pneumonia, row.p_bacterial, row.p_viral],
        "threshold": row.threshold,
        "refer": row.refer,
        "prediction_set": row.prediction_set,
        "ood": [row.ood_score, row.ood_threshold],
        "findings": row.findings,
        "input_meta": row.input_meta,
        "extra": row.extra,
        "timings": row.timings,
        "cached": row.cached,
        "image_sha256": row.image_sha256,
        "heatmap_sha256": hashlib.sha256(row.heatmap_png).hexdigest() if row.heatmap_png else None,
    }
    # Columns added after revision 0001 are sealed only when set, so rows written before them keep
    # the digest they were sealed with.
    for name in ("model_digest", "heatmap_peak", "heatmap_reference", "logits"):
        value = getattr(row, name, None)
        if value is not None:
            body[name] = value
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()
