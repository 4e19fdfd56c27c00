"""A real `cxr serve` on a loopback port: the new-user walk, and metrics summed over several workers."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import API, env_without_cxr

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    scheme: str = "http",
    settings: dict[str, str] | None = None,
    **client: Any,
) -> Iterator[Server]:
    """``settings``: more CXR_* variables; ``client``: httpx arguments the readiness probe needs
    (``verify``, ``cert`` over TLS)."""
    port = _free_port()
    env = {
        **env_without_cxr(),
        "CXR_DATA_DIR": str(tmp_path / "data"),
        "CXR_MODEL_PATH": str(model),
        "CXR_LOG_LEVEL": "WARNING",
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
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        stderr.close()


@pytest.fixture
def server(tmp_path: Path, bundled_model_path: Path) -> Iterator[Server]:
    with serving(tmp_path, bundled_model_path) as running:
        yield running


def _first_login(server: Server) -> tuple[str, str]:
    text = "".join(server.stdout)
    username = re.search(r"^\s+username: (\S+)$", text, re.M)
    password = re.search(r"^\s+password: (\S+)$", text, re.M)
    assert username and password, text
    return username.group(1), password.group(1)


def _admin_bearer(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    """Sign in with the printed password, which only allows setting a new one; then with the new one."""
    token = client.post(f"{API}/auth/token", data={"username": username, "password": password})
    assert token.status_code == 200 and token.json()["restriction"] == "password_change", token.text
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert client.post(f"{API}/keys", json={"name": "x"}, headers=bearer).status_code == 403
    change = {"current_password": password, "new_password": "the admin's own password"}
    assert client.post(f"{API}/auth/password", json=change, headers=bearer).status_code == 204
    token = client.post(f"{API}/auth/token", data={"username": username, "password": change["new_password"]})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_the_new_user_walk(server: Server, chest_jpeg: bytes, tmp_path: Path) -> None:
    username, password = _first_login(server)
    assert "shown ONCE" in "".join(server.stdout)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get(f"{API}/predictions").status_code == 401
        bearer = _admin_bearer(client, username, password)
        created = client.post(
            f"{API}/keys", json={"name": "first-script", "role": "clinician"}, headers=bearer
        )
        assert created.status_code == 201
        api_key = {"X-API-Key": created.json()["api_key"]}
        predicted = client.post(
            f"{API}/predict", files={"file": ("xray.jpeg", chest_jpeg, "image/jpeg")}, headers=api_key
        )
        assert predicted.status_code == 200, predicted.text
        assert predicted.headers["x-request-id"]
        listed = client.get(f"{API}/predictions", headers=api_key).json()
        assert predicted.json()["id"] in [p["id"] for p in listed["items"]]
        assert client.post(f"{API}/keys", json={"name": "x"}, headers=api_key).status_code == 403

    # Many readers at once (each read also writes its audit event): no 5xx, no pool exhaustion.
    def read(_: int) -> int:
        return httpx.get(f"{server.url}{API}/predictions", headers=api_key, timeout=60).status_code

    with ThreadPoolExecutor(48) as pool:
        assert set(pool.map(read, range(96))) == {200}
    verify = subprocess.run(
        [sys.executable, "-m", "cxr_pneumonia.cli", "audit", "verify"],
        env=server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0 and verify.stdout.startswith("intact:"), verify.stdout + verify.stderr


def test_a_restart_does_not_create_another_admin(tmp_path: Path, bundled_model_path: Path) -> None:
    for run in range(2):
        with serving(tmp_path, bundled_model_path) as server:
            banner = "password:" in "".join(server.stdout)
            assert banner is (run == 0)


def test_metrics_are_summed_over_workers(
    tmp_path: Path, bundled_model_path: Path, accepted_images: list[bytes]
) -> None:
    with serving(tmp_path, bundled_model_path, "--workers", "2") as server:
        username, password = _first_login(server)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            bearer = _admin_bearer(client, username, password)
            key = {
                "X-API-Key": client.post(
                    f"{API}/keys", json={"name": "m", "role": "clinician"}, headers=bearer
                ).json()["api_key"]
            }
            for data in accepted_images[:6]:
                # a fresh connection each time, so the kernel may hand requests to either worker
                assert (
                    httpx.post(
                        f"{server.url}{API}/predict",
                        files={"file": ("x.jpeg", data)},
                        headers=key,
                        timeout=60,
                    ).status_code
                    == 200
                )
            totals = set()
            for _ in range(4):
                text = httpx.get(f"{server.url}/metrics", timeout=30).text
                totals.add(
                    sum(
                        float(line.rsplit(" ", 1)[1])
                        for line in text.splitlines()
                        if line.startswith("cxr_predictions_total{")
                    )
                )
            assert totals == {6.0}
        files = list((tmp_path / "data" / "prometheus").glob("*.db"))
        pids = {f.stem.rsplit("_", 1)[1] for f in files}
        assert len(pids) >= 2, files  # both workers keep their own values, which /metrics sums
