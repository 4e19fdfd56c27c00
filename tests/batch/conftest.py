"""A real two-node Ray cluster on loopback (head 127.0.0.2, worker 127.0.0.3), shared by the Ray tests,
and `cxr predict` run as a user runs it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ports import free_port, free_ports

HEAD, WORKER = "127.0.0.2", "127.0.0.3"
RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_worker_register_timeout_seconds": "120",
}


def _worker_range(host: str) -> tuple[int, int]:
    """A block of 40 ports free now, for one node's worker processes."""
    for _ in range(50):
        start = free_port(host)
        if start + 40 > 65000:
            continue
        try:
            held = []
            for port in range(start, start + 40):
                sock = socket.socket()
                sock.bind((host, port))
                held.append(sock)
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return start, start + 39
    raise RuntimeError("no block of free ports")


def _node_flags(host: str) -> list[str]:
    manager, objects, agent, grpc, runtime, metrics = free_ports(6, host)
    low, high = _worker_range(host)
    return [
        f"--node-ip-address={host}", f"--node-manager-port={manager}", f"--object-manager-port={objects}",
        f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={grpc}",
        f"--runtime-env-agent-port={runtime}", f"--metrics-export-port={metrics}",
        f"--min-worker-port={low}", f"--max-worker-port={high}",
        "--num-cpus=1", "--object-store-memory=200000000", "--disable-usage-stats",
    ]  # fmt: skip


@dataclass
class RayCluster:
    address: str
    env: dict[str, str]


# Package scope: only tests/batch uses it, and an idle two-node cluster would otherwise hold memory and
# wake its raylets through every later suite of the session.
@pytest.fixture(scope="package")
def ray_cluster(missing: Callable[[str], None]) -> Iterator[RayCluster]:
    try:
        import ray  # noqa: F401
    except ImportError:
        missing("Ray is not installed: pip install -e '.[cluster]'")
    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp = Path(tempfile.mkdtemp(prefix="cxr-ray-"))
    env = {**os.environ, **RAY_ENV, "PYTHONPATH": os.pathsep.join(map(str, _src_path()))}
    port = free_port(HEAD)
    address = f"{HEAD}:{port}"
    # --block: each `ray start` stays in the foreground as the parent of its node's processes, in a
    # session of its own, so the teardown stops exactly these (never `ray stop`, which stops every
    # Ray on the machine).
    head = [ray_bin, "start", "--head", "--block", f"--port={port}", "--include-dashboard=false",
            f"--temp-dir={temp / 'head'}", *_node_flags(HEAD)]  # fmt: skip
    worker = [ray_bin, "start", "--block", f"--address={address}", f"--temp-dir={temp / 'worker'}",
              *_node_flags(WORKER)]  # fmt: skip
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        for index, command in enumerate((head, worker)):
            # Ray gives a node 30 s to register: on a loaded machine a start may time out; try again.
            for attempt in range(3):
                log = temp / f"node{index}.{attempt}.log"
                with log.open("wb") as handle:
                    node = subprocess.Popen(
                        command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
                    )
                if _node_up(log, node):
                    nodes.append(node)
                    break
                _stop_groups([node])
            else:
                pytest.fail(
                    "a Ray node did not start: " + " ".join(p.read_text() for p in temp.glob("node*.log"))
                )
        yield RayCluster(address, env)
    finally:
        _stop_groups(list(reversed(nodes)))
        shutil.rmtree(temp, ignore_errors=True)


def _node_up(log: Path, node: subprocess.Popen[bytes]) -> bool:
    """True once `ray start` says its node runs (it has registered with the cluster); False if it exits."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if "Ray runtime started" in log.read_text(errors="replace"):
            return True
        if node.poll() is not None:
            return False
        time.sleep(1)
    return False


def _stop_groups(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every node's `ray start --block` at once (each stops its processes; one at a time took
    over 30 s), give them 15 s together, then SIGKILL what is left of their sessions' process groups."""
    for process in processes:
        process.send_signal(signal.SIGTERM)  # started with start_new_session: each leads its own group
    deadline = time.monotonic() + 15
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.1, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _src_path() -> list[Path]:
    """Where cxr_pneumonia is imported from here: the Ray workers must import the same code."""
    import cxr_pneumonia

    return [Path(cxr_pneumonia.__file__).resolve().parents[1]]


def run_predict(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **RAY_ENV, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(map(str, _src_path()))
    return subprocess.run(
        [sys.executable, "-m", "cxr_pneumonia.cli", "predict", *args],
        capture_output=True, text=True, env=environment, timeout=900, cwd=cwd,
    )  # fmt: skip


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
