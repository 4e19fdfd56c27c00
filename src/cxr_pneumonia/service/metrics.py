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
from ..monitoring.detector import KINDS
from ..monitoring.online import Evaluation

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

# ---- production monitoring (monitoring/): the newest evaluation of the shared window --------------
DRIFT_SCORE = Gauge(
    "cxr_drift_score",
    "Drift score of the newest evaluation: -log10 of the smallest Holm-corrected p-value, by kind.",
    ["kind"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
DRIFT_ALARM = Gauge(
    "cxr_drift_alarm",
    "1 when a drift test of this kind alarms (significant for CXR_MONITORING_PERSISTENCE evaluations).",
    ["kind"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
DRIFT_TEST_P = Gauge(
    "cxr_drift_test_p_value",
    "Holm-corrected p-value of each drift test in the newest evaluation (1 when untested).",
    ["test", "kind"],
    registry=REGISTRY,
    multiprocess_mode="min",
)
WINDOW_SIZE = Gauge(
    "cxr_window_inputs", "Inputs in the newest monitoring window.", registry=REGISTRY, multiprocess_mode="max"
)
WINDOW_REFER = Gauge(
    "cxr_window_refer_rate",
    "Share of accepted inputs referred to a radiologist, in the newest monitoring window.",
    registry=REGISTRY,
    multiprocess_mode="max",
)
WINDOW_REFUSAL = Gauge(
    "cxr_window_refusal_rate",
    "Share of inputs refused, in the newest monitoring window.",
    registry=REGISTRY,
    multiprocess_mode="max",
)
WINDOW_PNEUMONIA = Gauge(
    "cxr_window_pneumonia_rate",
    "Share of accepted inputs labelled pneumonia, in the newest monitoring window.",
    registry=REGISTRY,
    multiprocess_mode="max",
)
MONITOR_EVALUATIONS = Gauge(
    "cxr_monitor_last_evaluation_timestamp_seconds",
    "When the drift tests last ran (Unix time).",
    registry=REGISTRY,
    multiprocess_mode="max",
)
MONITOR_GAPS = Counter(
    "cxr_monitor_gaps",
    "Inputs the monitor could not record (a full queue, a database error); the prediction was served.",
    ["reason"],
    registry=REGISTRY,
)
MONITOR_ACTIVE = Gauge(
    "cxr_monitor_active",
    "1 when the served model is being monitored for drift (its package has a reference).",
    registry=REGISTRY,
    multiprocess_mode="max",
)
REVIEWED = Gauge(
    "cxr_reviewed_cases",
    "Clinician-reviewed predictions in the rolling performance window, by model version.",
    ["model"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
REVIEWED_SENSITIVITY = Gauge(
    "cxr_reviewed_sensitivity",
    "Sensitivity on clinician-reviewed predictions (once CXR_MONITORING_MIN_REVIEWS are in), by model.",
    ["model"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
REVIEWED_SENSITIVITY_UPPER = Gauge(
    "cxr_reviewed_sensitivity_ci95_upper",
    "Upper end of the Wilson 95% interval of the reviewed sensitivity: under the card's value, the drop "
    "is more than chance.",
    ["model"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
REVIEWED_SPECIFICITY = Gauge(
    "cxr_reviewed_specificity",
    "Specificity on clinician-reviewed predictions, by model.",
    ["model"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
REVIEWED_PPV = Gauge(
    "cxr_reviewed_ppv", "PPV on clinician-reviewed predictions, by model.", ["model"], registry=REGISTRY,
    multiprocess_mode="max",
)  # fmt: skip
REVIEWED_ECE = Gauge(
    "cxr_reviewed_ece", "Expected calibration error on clinician-reviewed predictions, by model.", ["model"],
    registry=REGISTRY, multiprocess_mode="max",
)  # fmt: skip
CARD_SENSITIVITY = Gauge(
    "cxr_card_sensitivity",
    "The sensitivity the model card states (its recorded test evaluation), by model.",
    ["model"],
    registry=REGISTRY,
    multiprocess_mode="max",
)


class MonitorMetrics:
    """The online monitor's sink: its newest evaluation as gauges, its gaps as a counter."""

    def publish(self, evaluation: Evaluation) -> None:
        for kind in KINDS:
            summary = evaluation.summary.get(kind, {})
            DRIFT_SCORE.labels(kind).set(float(summary.get("score", 0.0)))
            DRIFT_ALARM.labels(kind).set(1.0 if summary.get("alarm") else 0.0)
        for test in evaluation.results:
            p = test.get("p_adjusted")
            DRIFT_TEST_P.labels(test["name"], test["kind"]).set(1.0 if p is None else float(p))
        rates = evaluation.summary.get("rates", {})
        for gauge, key in (
            (WINDOW_REFER, "refer"),
            (WINDOW_REFUSAL, "refusal"),
            (WINDOW_PNEUMONIA, "pneumonia"),
        ):
            if rates.get(key) is not None:
                gauge.set(float(rates[key]))
        WINDOW_SIZE.set(evaluation.window_size)
        MONITOR_EVALUATIONS.set(evaluation.created_at.timestamp())

    def gap(self, reason: str, count: int) -> None:
        MONITOR_GAPS.labels(reason).inc(count)


def set_monitor_active(active: bool) -> None:
    MONITOR_ACTIVE.set(1.0 if active else 0.0)
    for kind in KINDS:  # exported from the start, so alert rules and dashboards see the series
        DRIFT_SCORE.labels(kind)
        DRIFT_ALARM.labels(kind)
    MONITOR_GAPS.labels("write_error")


def set_reviewed(performance: list[dict]) -> None:
    """Per model version: the rolling reviewed performance (monitoring/performance.py)."""
    for entry in performance:
        model = entry["model"]
        REVIEWED.labels(model).set(entry["n"])
        for gauge, key in ((REVIEWED_SENSITIVITY, "sensitivity"), (REVIEWED_SPECIFICITY, "specificity"),
                           (REVIEWED_PPV, "ppv"), (REVIEWED_ECE, "ece")):  # fmt: skip
            value = entry.get(key)
            if entry.get("reported") and value is not None:
                gauge.labels(model).set(float(value["value"] if isinstance(value, dict) else value))
        interval = (entry.get("sensitivity") or {}).get("ci95") if entry.get("reported") else None
        if interval is not None:
            REVIEWED_SENSITIVITY_UPPER.labels(model).set(float(interval[1]))


def set_card(model: str, sensitivity: float | None) -> None:
    if sensitivity is not None:
        CARD_SENSITIVITY.labels(model).set(sensitivity)


def observe_prediction(prediction: Prediction, source: str) -> None:
    PREDICTIONS.labels(prediction.label, source).inc()
    if prediction.refer:
        REFERRALS.labels(source).inc()
    if not prediction.cached:
        INFERENCE_LATENCY.observe(prediction.timings.total_ms / 1000.0)


def observe_refusal(reason: str, source: str) -> None:
    REFUSALS.labels(reason, source).inc()


_served_model: list[tuple[str, str, str]] = []  # this process's current champion labels (at most one)


def set_model(model: ModelRef) -> None:
    """The champion this process serves is 1; one it served before a hot swap drops to 0 (a label
    cannot be removed from another process's multiprocess file, so it is zeroed, not deleted)."""
    labels = (model.name, model.version, model.sha256)
    for previous in _served_model:
        if previous != labels:
            MODEL_INFO.labels(*previous).set(0)
    _served_model[:] = [labels]
    MODEL_INFO.labels(*labels).set(1)


def exposition(multiprocess_dir: Path | None) -> tuple[bytes, str]:
    """(body, content type) of the Prometheus text format."""
    if multiprocess_dir is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir))
    return generate_latest(registry), CONTENT_TYPE_LATEST
