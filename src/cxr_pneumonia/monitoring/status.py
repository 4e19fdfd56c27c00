"""What ``GET /api/v1/monitoring`` and the web page's Monitoring view show: the current window and each
test, the history of evaluations (for time-series plots), the monitor's gaps, the reviewed performance."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..config import Settings
from ..store.facade import Store
from .online import Evaluation, OnlineMonitor, evaluations
from .performance import reviewed_performance


def history_point(evaluation: Evaluation) -> dict[str, Any]:
    summary = evaluation.summary
    return {
        "at": evaluation.created_at.isoformat(),
        "window_size": evaluation.window_size,
        "scores": {k: v["score"] for k, v in summary.items() if isinstance(v, dict) and "score" in v},
        "alarms": {k: v["alarm"] for k, v in summary.items() if isinstance(v, dict) and "alarm" in v},
        "rates": summary.get("rates", {}),
    }


def monitoring_status(
    store: Store, settings: Settings, monitor: OnlineMonitor | None, *, history: int = 200
) -> dict[str, Any]:
    reviewed = reviewed_performance(
        store, min_reviews=settings.monitoring_min_reviews, window=settings.monitoring_review_window
    )
    if monitor is None:
        return {"active": False, "current": None, "history": [], "gaps": {}, "reviewed": reviewed}
    past = evaluations(store, monitor.model_digest, limit=history)
    reference = monitor.reference
    return {
        "active": True,
        "model_digest": monitor.model_digest,
        "config": asdict(monitor.config),
        "reference": {"images": reference.size, "rates": reference.rates, "info": reference.info},
        "current": past[-1].to_dict() if past else None,
        "history": [history_point(e) for e in past],
        "gaps": dict(monitor.gaps),
        "reviewed": reviewed,
    }
