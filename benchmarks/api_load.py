"""Load benchmark of the REST API: a real `cxr serve` on loopback, real Kermany test images.

Starts `cxr serve` on a free loopback port with a temporary data directory (SQLite), logs in with the
printed one-time admin login, creates a clinician API key, then for each concurrency level runs that
many clients (asyncio + httpx, one connection each) posting images to /api/v1/predict for a fixed
time. Reports requests/s, accepted predictions/s, latency p50/p95/p99, refusals and errors (transport
failures and any status other than 200 or a 422 refusal: must be 0), and afterwards checks that every
prediction id the API returned is in the database and that the audit chain is intact.

    .venv/bin/python benchmarks/api_load.py [--model PACKAGE (default: $CXR_MODEL_PATH or the bundled model)]
        [--data ../shared/data/kermany/test] [--concurrency 1 8 32] [--seconds 20] [--workers 1]
        [--threads 0] [--out benchmarks/results] [--shadow PACKAGE_OR_URI]

The result cache is off (CXR_RESULT_CACHE_SIZE=0) and the images cycle through the test split, so every
request pays for a real inference; rate limits are raised out of the way. Not a test: it writes
api_load.json and api_load.md and exits 0 even when a target is missed (the JSON says which).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import queue
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1"
TARGETS = {"p50_ms_at_1_client": 50.0, "predictions_per_s_at_8_clients": 40.0}


# ---- the server ----------------------------------------------------------------------------------
@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    env: dict[str, str]
    data_dir: Path
    stdout: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    model: Path, data_dir: Path, workers: int, threads: int, slots: int, shadow: str | None = None
) -> Server:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXR_")}
    env.update(
        {
            "CXR_DATA_DIR": str(data_dir),
            "CXR_MODEL_PATH": str(model),
            "CXR_LOG_LEVEL": "WARNING",
            "CXR_RESULT_CACHE_SIZE": "0",
            "CXR_INTRA_OP_THREADS": str(threads),
            "CXR_INFERENCE_CONCURRENCY": str(slots),
            "CXR_RATE_LIMIT": "1000000/minute",
            "CXR_RATE_LIMIT_CLIENT": "1000000/minute",
            "CXR_RATE_LIMIT_ANONYMOUS": "1000000/minute",
        }
    )
    if shadow:  # every accepted input also runs through this model, off the response's path
        env["CXR_SHADOW_MODEL_URI"] = shadow if shadow.startswith("models:") else str(Path(shadow).resolve())
    process = subprocess.Popen(
        [sys.executable, "-m", "cxr_pneumonia.cli", "serve", "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.PIPE,
        stderr=(data_dir.parent / "serve.stderr").open("w"),
        text=True,
        env=env,
        cwd=data_dir.parent,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or []], daemon=True).start()
    server = Server(f"http://127.0.0.1:{port}", process, env, data_dir)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        while not lines.empty():
            server.stdout.append(lines.get())
        if process.poll() is not None:
            raise SystemExit("cxr serve exited:\n" + (data_dir.parent / "serve.stderr").read_text())
        try:
            if httpx.get(f"{server.url}{API}/health/ready", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_server(server)
    raise SystemExit("cxr serve did not become ready in 180 s")


def stop_server(server: Server) -> None:
    server.process.send_signal(signal.SIGINT)
    try:
        server.process.wait(30)
    except subprocess.TimeoutExpired:
        server.process.kill()


def api_key(server: Server) -> str:
    text = "".join(server.stdout)
    username = re.search(r"^\s+username: (\S+)$", text, re.M)
    password = re.search(r"^\s+password: (\S+)$", text, re.M)
    if not (username and password):
        raise SystemExit("no one-time login in the server's output:\n" + text)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        # The printed password only allows setting a new one (docs/security.md): set one, sign in again.
        token = client.post(f"{API}/auth/token", data={"username": username[1], "password": password[1]})
        token.raise_for_status()
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        new_password = secrets.token_urlsafe(24)
        change = {"current_password": password[1], "new_password": new_password}
        client.post(f"{API}/auth/password", json=change, headers=bearer).raise_for_status()
        token = client.post(f"{API}/auth/token", data={"username": username[1], "password": new_password})
        token.raise_for_status()
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        created = client.post(
            f"{API}/keys", json={"name": "load-benchmark", "role": "clinician"}, headers=bearer
        )
        created.raise_for_status()
        return str(created.json()["api_key"])


# ---- the load -------------------------------------------------------------------------------------
@dataclass
class LevelResult:
    clients: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)  # every answered request (200 or 422)
    accepted_ids: list[str] = field(default_factory=list)
    refused: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)

        def pct(q: float) -> float | None:
            return (
                round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2) if ordered else None
            )

        answered = len(ordered)
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 2),
            "requests": answered + sum(self.errors.values()),
            "requests_per_s": round(answered / self.seconds, 2),
            "accepted": len(self.accepted_ids),
            "predictions_per_s": round(len(self.accepted_ids) / self.seconds, 2),
            "refused": self.refused,
            "errors": sum(self.errors.values()),
            "error_kinds": self.errors,
            "latency_ms": {
                "p50": pct(0.50),
                "p95": pct(0.95),
                "p99": pct(0.99),
                "mean": round(statistics.fmean(ordered), 2) if ordered else None,
            },
        }


def _error_code(response: httpx.Response) -> str:
    """The stable error code of an error body (DESIGN.md), so the report says what went wrong."""
    try:
        return str(response.json().get("error", "?"))
    except ValueError:
        return "not-json"


async def run_level(
    url: str, key: str, images: list[bytes], clients: int, seconds: float, start_index: int
) -> LevelResult:
    result = LevelResult(clients, seconds)
    counter = itertools.count(start_index)
    deadline = time.perf_counter() + seconds

    async def client_loop() -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            base_url=url, headers={"X-API-Key": key}, timeout=60, limits=limits
        ) as http:
            while time.perf_counter() < deadline:
                data = images[next(counter) % len(images)]
                started = time.perf_counter()
                try:
                    response = await http.post(
                        f"{API}/predict", files={"file": ("xray.jpeg", data, "image/jpeg")}
                    )
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                    result.errors[kind] = result.errors.get(kind, 0) + 1
                    continue
                elapsed = (time.perf_counter() - started) * 1000.0
                if response.status_code == 200:
                    result.latencies_ms.append(elapsed)
                    result.accepted_ids.append(response.json()["id"])
                elif response.status_code == 422 and response.json().get("error") == "rejected":
                    result.latencies_ms.append(elapsed)
                    result.refused += 1  # the model's answer "not a chest X-ray it may read": not an error
                else:
                    kind = f"http_{response.status_code}:{_error_code(response)}"
                    result.errors[kind] = result.errors.get(kind, 0) + 1

    began = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    result.seconds = time.perf_counter() - began
    return result


def check_database(server: Server, ids: list[str]) -> dict[str, Any]:
    """Every accepted prediction must be in the database, and the audit chain intact."""
    sys.path.insert(0, str(ROOT / "src"))
    from sqlalchemy import select

    from cxr_pneumonia.config import Settings
    from cxr_pneumonia.store import audit
    from cxr_pneumonia.store.db.models import PredictionRecord
    from cxr_pneumonia.store.facade import Store

    store = Store.from_settings(Settings(_env_file=None, data_dir=server.data_dir, database_url=None))  # type: ignore[call-arg]
    with store.reading() as session:
        stored = set(session.scalars(select(PredictionRecord.id)))
        report = audit.verify(session)
    store.close()
    missing = [i for i in ids if i not in stored]
    return {
        "returned_ids": len(ids),
        "found_in_database": len(ids) - len(missing),
        "lost": len(missing),
        "audit_chain_intact": report.ok,
        "audit_events": report.events,
        "audit_detail": report.detail,
    }


# ---- report ---------------------------------------------------------------------------------------
def markdown(result: dict[str, Any]) -> str:
    env, db = result["environment"], result["database_check"]
    lines = [
        "# API load benchmark",
        "",
        f"`cxr serve` ({env['workers']} worker, ONNX Runtime intra-op threads {env['intra_op_threads'] or 'auto'}) on "
        f"loopback, model {env['model_id']}, {env['images']} Kermany test images cycled, result cache off, "
        f"{env['seconds_per_level']} s per level. Machine: {env['cpus']} CPUs, load average "
        f"{env['load_average_before']} before the run. {env['note']}",
        "",
        "| clients | requests/s | predictions/s | p50 ms | p95 ms | p99 ms | refused | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in result["levels"]:
        lat = level["latency_ms"]
        lines.append(
            f"| {level['clients']} | {level['requests_per_s']} | {level['predictions_per_s']} | {lat['p50']} | "
            f"{lat['p95']} | {lat['p99']} | {level['refused']} | {level['errors']} |"
        )
    lines += [
        "",
        f"Database check: {db['found_in_database']} of {db['returned_ids']} returned prediction ids found "
        f"(lost: {db['lost']}); audit chain intact: {db['audit_chain_intact']} ({db['audit_events']} events).",
        "",
        "| target | wanted | measured | met |",
        "|---|---:|---:|---|",
    ]
    for name, target in result["targets"].items():
        lines.append(
            f"| {name} | {target['wanted']} | {target['measured']} | {'yes' if target['met'] else 'NO'} |"
        )
    if "shadow" in result:
        lines += ["", f"With a shadow model ({result['environment']['shadow_model']}), each level run again:", "",
                  "| clients | p50 ms without → with | p50 growth % | predictions/s without → with | throughput cost % |",
                  "|---:|---:|---:|---:|---:|"]  # fmt: skip
        for lv in result["shadow"]["levels"]:
            lines.append(
                f"| {lv['clients']} | {lv['p50_ms'][0]} → {lv['p50_ms'][1]} | {lv['p50_growth_pct']} "
                f"| {lv['predictions_per_s'][0]} → {lv['predictions_per_s'][1]} | {lv['throughput_cost_pct']} |"
            )
        lines.append(f"\nShadow queue: {result['shadow']['shadow_queue']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    from cxr_pneumonia.config import default_model_path

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=Path(os.environ.get("CXR_MODEL_PATH", default_model_path())),
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/kermany/test")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each level")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=0, help="CXR_INTRA_OP_THREADS for the server (0: auto)"
    )
    parser.add_argument(
        "--slots", type=int, default=0, help="CXR_INFERENCE_CONCURRENCY (0: one per CPU core)"
    )
    parser.add_argument("--note", default="", help="free text for the report (e.g. what else ran)")
    parser.add_argument(
        "--shadow",
        default=None,
        help="a shadow model (path or models:/ URI): run every level without it, then with it, and "
        "report the cost (writes api_load_shadow.json/.md)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()

    images = [p.read_bytes() for p in sorted(args.data.rglob("*.jpeg"))]
    if not images:
        raise SystemExit(f"no .jpeg images under {args.data}")
    load_before = os.getloadavg()
    levels, database, model_id, _ = measure(args, images, None)
    shadow_report = None
    if args.shadow:
        shadowed, shadow_db, _, queue_stats = measure(args, images, args.shadow)
        shadow_report = shadow_cost(levels, shadowed, queue_stats)
        database = {**database, "with_shadow": shadow_db}
    by_clients = {level["clients"]: level for level in levels}
    measured_p50 = by_clients.get(1, {}).get("latency_ms", {}).get("p50")
    measured_rate = by_clients.get(8, {}).get("predictions_per_s")
    targets = {
        "p50_ms_at_1_client": {
            "wanted": f"<= {TARGETS['p50_ms_at_1_client']}",
            "measured": measured_p50,
            "met": measured_p50 is not None and measured_p50 <= TARGETS["p50_ms_at_1_client"],
        },
        "predictions_per_s_at_8_clients": {
            "wanted": f">= {TARGETS['predictions_per_s_at_8_clients']}",
            "measured": measured_rate,
            "met": measured_rate is not None and measured_rate >= TARGETS["predictions_per_s_at_8_clients"],
        },
        "errors": {
            "wanted": "0",
            "measured": sum(level["errors"] for level in levels),
            "met": all(level["errors"] == 0 for level in levels),
        },
        "lost_predictions": {
            "wanted": "0",
            "measured": database["lost"],
            "met": database["lost"] == 0 and database["audit_chain_intact"],
        },
    }
    result = {
        "benchmark": "api_load",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "workers": args.workers,
            "intra_op_threads": args.threads,
            "inference_concurrency": args.slots,
            "model_id": model_id,
            "images": len(images),
            "seconds_per_level": args.seconds,
            "note": args.note,
        },
        "levels": levels,
        "database_check": database,
        "targets": targets,
    }
    name = "api_load"
    if shadow_report is not None:
        result["shadow"] = shadow_report
        result["environment"]["shadow_model"] = args.shadow
        targets["shadow_p50_growth_pct_at_1_client"] = shadow_report["target"]
        name = "api_load_shadow"  # beside, not over, the plain run's report
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))


def measure(
    args: argparse.Namespace, images: list[bytes], shadow: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any], str, dict[str, Any] | None]:
    """One server, every concurrency level: (levels, database check, model id, shadow queue stats)."""
    levels: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cxr-load-") as tmp:
        server = start_server(
            args.model.resolve(), Path(tmp) / "data", args.workers, args.threads, args.slots, shadow
        )
        try:
            key = api_key(server)
            warm = asyncio.run(run_level(server.url, key, images, 2, 3.0, 0))  # sessions, allocators, pages
            offset, ids = 0, list(warm.accepted_ids)
            for clients in args.concurrency:
                level = asyncio.run(run_level(server.url, key, images, clients, args.seconds, offset))
                offset += len(level.latencies_ms) + sum(level.errors.values())
                ids += level.accepted_ids
                levels.append({**level.summary(), "shadow": bool(shadow)})
                print(json.dumps(levels[-1]), flush=True)
            with httpx.Client(base_url=server.url, headers={"X-API-Key": key}) as client:
                model_id = client.get(f"{API}/models/current").json()["model_id"]
                queue_stats = client.get(f"{API}/models").json().get("shadow_queue") if shadow else None
        finally:
            stop_server(server)
            if any(level["errors"] for level in levels):  # keep the server's log: it says why
                args.out.mkdir(parents=True, exist_ok=True)
                shutil.copy(Path(tmp) / "serve.stderr", args.out / "api_load.serve.log")
        database = check_database(server, ids)
    return levels, database, model_id, queue_stats


def shadow_cost(
    plain: list[dict[str, Any]], shadowed: list[dict[str, Any]], queue_stats: dict[str, Any] | None
) -> dict[str, Any]:
    """What running a shadow costs: p50 growth at 1 client (target <= 10%), throughput at each level."""
    without = {level["clients"]: level for level in plain}
    per_level = []
    for level in shadowed:
        base = without.get(level["clients"])
        if base is None:
            continue
        p50, p50_base = level["latency_ms"]["p50"], base["latency_ms"]["p50"]
        rate, rate_base = level["predictions_per_s"], base["predictions_per_s"]
        per_level.append({
            "clients": level["clients"],
            "p50_ms": [p50_base, p50],
            "p50_growth_pct": round((p50 / p50_base - 1) * 100, 1) if p50_base else None,
            "predictions_per_s": [rate_base, rate],
            "throughput_cost_pct": round((1 - rate / rate_base) * 100, 1) if rate_base else None,
        })  # fmt: skip
    growth = next((lv["p50_growth_pct"] for lv in per_level if lv["clients"] == 1), None)
    return {
        "levels": per_level,
        "shadow_queue": queue_stats,  # recorded, dropped (a full queue), failed
        "target": {"wanted": "<= 10", "measured": growth, "met": growth is not None and growth <= 10},
    }


if __name__ == "__main__":
    main()
