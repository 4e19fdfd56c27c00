"""Prometheus metrics, all prefixed ``cxr_``.

Defined once per process in a registry of our own (tests build many apps in one process). With several
Uvicorn workers, ``cxr serve`` sets PROMETHEUS_MULTIPROC_DIR before this module is imported, so every
value lives in a per-process file and :func:`exposition` sums them across workers.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from ..inference.prediction import ModelRef, Prediction

REGISTRY = CollectorRegistry(auto_describe=True)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "cxr_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "cxr_http_request_duration_seconds",
    "HTTP request latency by route template and method.",
    ["route", "method"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "cxr_http_requests_in_flight",
    "HTTP requests being served.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
INFERENCE_LATENCY = Histogram(
    "cxr_inference_duration_seconds",
    "Time from input bytes to a prediction (decode, preprocess, model, heatmap), uncached predictions only.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
PREDICTIONS = Counter(
    "cxr_predictions_total",
    "Accepted predictions by label and source.",
    ["label", "source"],
    registry=REGISTRY,
)
REFERRALS = Counter(
    "cxr_referrals_total",
    "Predictions flagged 'refer to a radiologist', by source.",
    ["source"],
    registry=REGISTRY,
)
REFUSALS = Counter(
    "cxr_refusals_total",
    "Inputs refused or unreadable, by reason.",
    ["reason", "source"],
    registry=REGISTRY,
)
MODEL_INFO = Gauge(
    "cxr_model_info",
    "The model being served (value 1).",
    ["name", "version", "sha256"],
    registry=REGISTRY,
    multiprocess_mode="max",
)


def observe_prediction(prediction: Prediction, source: str) -> None:
    PREDICTIONS.labels(prediction.label, source).inc()
    if prediction.refer:
        REFERRALS.labels(source).inc()
    if not prediction.cached:
        INFERENCE_LATENCY.observe(prediction.timings.total_ms / 1000.0)


def observe_refusal(reason: str, source: str) -> None:
    REFUSALS.labels(reason, source).inc()


def set_model(model: ModelRef) -> None:
    MODEL_INFO.labels(model.name, model.version, model.sha256).set(1)


def exposition(multiprocess_dir: Path | None) -> tuple[bytes, str]:
    """(body, content type) of the Prometheus text format."""
    if multiprocess_dir is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir))
    return generate_latest(registry), CONTENT_TYPE_LATEST
