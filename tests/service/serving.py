"""`cxr serve` as a real subprocess on a loopback port, for the tests that need the whole server."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ports import free_port

from .conftest import API, env_without_cxr


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    stdout: list[str]
    env: dict[str, str]


@contextmanager
def serving(
    tmp_path: Path,
    model: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    scheme: str = "http",
    settings: dict[str, str] | None = None,
    **client: Any,
) -> Iterator[Server]:
    """`cxr serve` in a subprocess on a free loopback port (data in tmp_path/data), ready when yielded;
    stopped with SIGINT at the end. ``env``/``settings`` add CXR_* settings; ``client``: httpx
    arguments the readiness probe needs (``verify``, ``cert`` over TLS)."""
    port = free_port()
    env = {
        **env_without_cxr(),
        "CXR_DATA_DIR": str(tmp_path / "data"),
        "CXR_MODEL_PATH": str(model),
        "CXR_LOG_LEVEL": "WARNING",
        **(env or {}),
        **(settings or {}),
    }
    stderr = (tmp_path / "serve.stderr").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "cxr_pneumonia.cli", "serve", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or []], daemon=True).start()
    server = Server(f"{scheme}://127.0.0.1:{port}", process, [], env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            while not lines.empty():
                server.stdout.append(lines.get())
            try:
                if httpx.get(f"{server.url}{API}/health/ready", timeout=2, **client).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "serve.stderr").read_text()
            time.sleep(0.5)
        else:
            pytest.fail("cxr serve did not become ready in 120 s")
        yield server
    finally:
        stop(process, signal.SIGINT, 30)
        stderr.close()


def stop(process: subprocess.Popen[str], sig: signal.Signals, timeout: float) -> None:
    """Ask a server to stop with `sig`; kill it if it has not within `timeout` seconds."""
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
