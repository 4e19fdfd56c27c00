"""What the online drift monitor costs per prediction (the issue's bound: at most 1 ms).

Real predictions of Kermany train images by the bundled model (or --model), a monitoring reference
made from other train images (never test), and a real SQLite store in a temporary directory. Measured:

- ``observe_ms``: the request thread's share, OnlineMonitor.observe_prediction (the reference's PCA
  projection of the pooled features, the compact row, a queue put);
- ``evaluate_ms`` and ``evaluate_per_prediction_ms``: one run of every drift test on a full window,
  and that divided by CXR_MONITORING_EVAL_EVERY (the tests run every K inputs, in the background);
- ``write_per_prediction_ms``: the background writer's database time per row (insert, due check,
  evaluation when due, pruning), in batches of ``--batch`` rows.

    .venv/bin/python benchmarks/monitor_overhead.py [--model PKG] [--data ../shared/data/kermany]
        [--n 2000] [--out benchmarks/results]

Writes monitor_overhead.json. ``loaded_machine`` records whether it was run while something else
(model training) used the CPU: the 1-minute load average against the core count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _timed(fn: Any, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "mean": statistics.fmean(values),
        "p50": ordered[len(ordered) // 2],
        "p95": ordered[int(len(ordered) * 0.95)],
        "max": ordered[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "kermany")
    parser.add_argument("--n", type=int, default=2000, help="observations timed")
    parser.add_argument("--batch", type=int, default=5, help="rows per background write")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    from cxr_pneumonia.config import Settings, default_model_path
    from cxr_pneumonia.inference import Predictor
    from cxr_pneumonia.monitoring.detector import Detector, DriftConfig
    from cxr_pneumonia.monitoring.online import OnlineMonitor
    from cxr_pneumonia.monitoring.reference import Reference, build_reference
    from cxr_pneumonia.store.facade import Store

    predictor = Predictor.from_package(args.model or default_model_path())
    reference = Reference.in_package(predictor.package)
    normal = sorted((args.data / "train" / "NORMAL").glob("*.jpeg"))
    pneumonia = sorted((args.data / "train" / "PNEUMONIA").glob("*.jpeg"))
    if reference is None:  # train images only; the ones predicted below are others
        reference = build_reference(
            predictor, normal[:100] + pneumonia[:100], info={"selection": "benchmark"}
        )
    images = normal[200:225] + pneumonia[200:225]
    predictions = [predictor.predict(p, heatmap=False) for p in images]
    config = DriftConfig()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp), database_url=None)  # type: ignore[call-arg]
        store = Store.from_settings(settings)
        monitor = OnlineMonitor(store, reference, predictor.model_ref.digest, config)
        # the request thread's cost (the queue is drained between rounds so it never fills)
        observe: list[float] = []
        for start in range(0, args.n, 500):
            for i in range(start, min(args.n, start + 500)):
                prediction = predictions[i % len(predictions)]
                t0 = time.perf_counter()
                monitor.observe_prediction(prediction, "api")
                observe.append((time.perf_counter() - t0) * 1000.0)
            monitor._queue.queue.clear()
        # one evaluation on a full window (the MMD nulls are computed once per window size first)
        window = [reference.sample(predictions[i % len(predictions)], "api") for i in range(config.window)]
        detector = Detector(reference, config)
        detector.evaluate(window)
        evaluate = _timed(lambda: detector.evaluate(window), 50)
        # the background writer, batch after batch, through the real database
        writes: list[float] = []
        for round_ in range(200):
            for i in range(args.batch):
                monitor.observe_prediction(predictions[(round_ * args.batch + i) % len(predictions)], "api")
            t0 = time.perf_counter()
            monitor.flush()
            writes.append((time.perf_counter() - t0) * 1000.0 / args.batch)
        store.close()

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    result = {
        "benchmark": "monitor_overhead",
        "model": predictor.model_ref.model_id,
        "reference_images": reference.size,
        "config": {"window": config.window, "eval_every": config.eval_every},
        "observe_ms": _stats(observe),
        "evaluate_ms": _stats(evaluate),
        "evaluate_per_prediction_ms": statistics.fmean(evaluate) / config.eval_every,
        "write_per_prediction_ms": _stats(writes),
        "request_thread_within_1ms": _stats(observe)["p95"] < 1.0,
        "statistics_per_prediction_ms": _stats(observe)["mean"]
        + statistics.fmean(evaluate) / config.eval_every,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cores": cores,
            "load_1min": load,
            "loaded_machine": load > 0.5 * cores,
        },
        "note": "run while a model trained on the same 2 cores" if load > 0.5 * cores else "",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "monitor_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
