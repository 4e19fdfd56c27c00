"""Batch inference on Ray (two local nodes) vs the local pool, on the same 2 cores and the same images.

Reads the Kermany train images (5,216) with `cxr predict`'s two engines: the local pool (the
Predictor's decoders ahead of one ONNX Runtime session using every core) and Ray Data on a two-node
cluster on loopback (head 127.0.0.2, worker 127.0.0.3, one CPU each, one Predictor per actor). The
inputs are hashed once beforehand (both engines need the sha256; the time is reported apart), and the
cluster's start-up is timed apart from its throughput. Target: Ray >= 0.8x the local pool.

    .venv/bin/python benchmarks/ray_batch.py [--data ../shared/data/kermany/train] [--limit N]
        [--batch-size 16] [--model models/cxr-effnet-lite0] [--out benchmarks/results]

Needs the cluster extra (ray[data]). Not a test: writes ray_batch.json and exits 0 even when the
target is missed (the JSON says which). `load_average` records how busy the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.8


def _local(items: list[Any], model: Path, batch_size: int) -> tuple[float, int]:
    from cxr_pneumonia.batch.local import read_local
    from cxr_pneumonia.inference import Predictor

    predictor = Predictor.from_package(model)
    start = time.perf_counter()
    rows = sum(1 for _ in read_local(items, predictor, heatmaps=None, batch_size=batch_size))
    return time.perf_counter() - start, rows


def _ray(items: list[Any], model: Path, batch_size: int) -> tuple[float, float, int]:
    from ray.cluster_utils import Cluster

    from cxr_pneumonia.batch.cluster import read_on_ray

    node = {"num_cpus": 1, "object_store_memory": 200_000_000, "include_dashboard": False}
    started = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={**node, "node_ip_address": "127.0.0.2"})
    try:
        cluster.add_node(**node, node_ip_address="127.0.0.3")
        cluster.wait_for_nodes()
        startup = time.perf_counter() - started
        # The first rows include starting the actors (opening a Predictor each): part of the job.
        start = time.perf_counter()
        rows = sum(1 for _ in read_on_ray(items, cluster.address, model=model, heatmaps=None,
                                          batch_size=batch_size, threads=1, min_side=64, node_ip="127.0.0.2"))  # fmt: skip
        return startup, time.perf_counter() - start, rows
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "kermany" / "train")
    parser.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "cxr-effnet-lite0")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from cxr_pneumonia.batch.sources import pending

    files = sorted(args.data.glob("*/*.jpeg"))
    files = files[: args.limit] if args.limit else files
    load_before = os.getloadavg()
    start = time.perf_counter()
    items = list(pending(files, set()))
    hashing = time.perf_counter() - start
    local_seconds, local_rows = _local(items, args.model, args.batch_size)
    startup, ray_seconds, ray_rows = _ray(items, args.model, args.batch_size)
    local_rate, ray_rate = local_rows / local_seconds, ray_rows / ray_seconds
    result = {
        "benchmark": "ray_batch",
        "images": len(files),
        "data": str(args.data),
        "batch_size": args.batch_size,
        "hashing_seconds": round(hashing, 2),
        "local": {
            "seconds": round(local_seconds, 2),
            "rows": local_rows,
            "images_per_s": round(local_rate, 2),
        },
        "ray": {
            "nodes": 2,
            "cpus_per_node": 1,
            "startup_seconds": round(startup, 2),
            "seconds": round(ray_seconds, 2),
            "rows": ray_rows,
            "images_per_s": round(ray_rate, 2),
        },
        "ratio_ray_to_local": round(ray_rate / local_rate, 3),
        "target": TARGET,
        "met": ray_rate / local_rate >= TARGET,
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ray_batch.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
