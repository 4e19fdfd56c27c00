"""Two real `cxr serve` replicas on one PostgreSQL and one Redis, behind Debian's nginx.

A bounded load goes through nginx; one replica is killed with SIGKILL in the middle of it. The other
keeps answering, every 200 answer's prediction is in the database exactly once, the audit chain
verifies, and a per-key limit of N/minute allows N across both replicas, not 2N.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from ports import free_port
from sqlalchemy import func, select

from cxr_pneumonia.config import Settings
from cxr_pneumonia.store import accounts, audit
from cxr_pneumonia.store.db.models import PredictionRecord
from cxr_pneumonia.store.facade import Store
from cxr_pneumonia.store.security.roles import Role

from .conftest import API
from .serving import Server, serving, stop

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

LIMIT = 5  # per credential and minute, on both replicas
LOAD_KEYS = 8  # the load spreads over keys so it stays under each key's limit
LOAD_PER_KEY = LIMIT - 1


def _nginx_conf(root: Path, port: int, upstreams: list[str]) -> str:
    servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=30s;" for u in upstreams)
    return f"""daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format upstream '$upstream_addr $status $request_uri';
    access_log {root}/access.log upstream;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    client_max_body_size 64m;
    client_body_buffer_size 16m;
    upstream cxr {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://cxr;
            proxy_set_header Host $host;
            proxy_set_header X-Request-ID $http_x_request_id;
            # Retry on the other replica only when the request could not be sent (connection refused):
            # POST is not retried after it reached a replica, so nothing is recorded twice.
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


@contextmanager
def _nginx(upstreams: list[str], missing: Callable[[str], None]) -> Iterator[tuple[str, Path]]:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        missing("nginx is not installed: run .ci/nginx.sh")
    # Not under pytest's 0700 tmp: as root, nginx's worker runs as nobody and writes its temp files here.
    root = Path(tempfile.mkdtemp(prefix="cxr-nginx-"))
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / sub).mkdir()
        (root / sub).chmod(0o777)
    root.chmod(0o755)
    port = free_port()
    (root / "nginx.conf").write_text(_nginx_conf(root, port, upstreams))
    process = subprocess.Popen(
        [str(binary), "-c", str(root / "nginx.conf"), "-p", str(root)], stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}{API}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else "nginx exited"
            time.sleep(0.1)
        yield url, root
    finally:
        stop(process, signal.SIGQUIT, 10)
        shutil.rmtree(root, ignore_errors=True)


def _predict(url: str, key: str, image: bytes) -> tuple[str, int, str | None]:
    request_id = uuid.uuid4().hex
    try:
        response = httpx.post(
            f"{url}{API}/predict",
            files={"file": ("x.jpeg", image, "image/jpeg")},
            headers={"X-API-Key": key, "X-Request-ID": request_id},
            timeout=120,
        )
    except httpx.TransportError:
        return request_id, 0, None
    return (
        request_id,
        response.status_code,
        response.json().get("id") if response.status_code == 200 else None,
    )


def test_two_replicas_behind_nginx_survive_a_killed_one(
    tmp_path: Path,
    bundled_model_path: Path,
    postgres_url: str,
    redis_url: str,
    chest_jpeg: bytes,
    missing: Callable[[str], None],
) -> None:
    env = {
        "CXR_DATABASE_URL": postgres_url,
        "CXR_REDIS_URL": redis_url,
        "CXR_REDIS_PREFIX": f"cxr-replicas-{uuid.uuid4().hex[:8]}",
        "CXR_JWT_SECRET": uuid.uuid4().hex * 2,
        "CXR_RATE_LIMIT": f"{LIMIT}/minute",
        "CXR_RATE_LIMIT_CLIENT": "10000/minute",  # every request comes from nginx's address
        "CXR_INFERENCE_CONCURRENCY": "1",
        "CXR_INTRA_OP_THREADS": "1",
    }
    with ExitStack() as stack:
        replicas: list[Server] = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            replicas.append(stack.enter_context(serving(tmp_path / name, bundled_model_path, env=env)))
        url, nginx_root = stack.enter_context(
            _nginx([r.url.removeprefix("http://") for r in replicas], missing)
        )
        store = Store.from_settings(Settings(_env_file=None, database_url=postgres_url, data_dir=tmp_path))  # type: ignore[call-arg]
        stack.callback(store.close)
        with store.transaction() as session:
            keys = [
                accounts.create_key(session, f"load-{i}", Role.CLINICIAN, created_by="test")[1]
                for i in range(LOAD_KEYS + 2)
            ]
        limited, reader, load_keys = keys[0], keys[1], keys[2:]

        # N/minute across both replicas: nginx alternates them, and only N of 2N pass.
        codes = [
            httpx.get(f"{url}{API}/auth/me", headers={"X-API-Key": limited}, timeout=30).status_code
            for _ in range(2 * LIMIT)
        ]
        assert codes.count(200) == LIMIT and codes.count(429) == LIMIT, codes
        served_by = [
            line.split()[0]
            for line in (nginx_root / "access.log").read_text().splitlines()
            if "/auth/me" in line
        ]
        assert {r.url.removeprefix("http://") for r in replicas} == set(served_by), served_by

        # The load, with replica a killed once a quarter of the answers are in.
        jobs = [key for key in load_keys for _ in range(LOAD_PER_KEY)]
        answered, killed_at = threading.Event(), []
        results: list[tuple[str, int, str | None, bool]] = []
        lock = threading.Lock()

        def one(key: str) -> None:
            request_id, status, prediction_id = _predict(url, key, chest_jpeg)
            with lock:
                results.append((request_id, status, prediction_id, bool(killed_at)))
                if len(results) >= len(jobs) // 4:
                    answered.set()

        def killer() -> None:
            answered.wait(300)
            replicas[0].process.send_signal(signal.SIGKILL)
            replicas[0].process.wait(30)
            killed_at.append(time.monotonic())

        with ThreadPoolExecutor(4) as pool:
            kill = pool.submit(killer)
            for future in [pool.submit(one, key) for key in jobs]:
                future.result()
            kill.result()

        assert killed_at and replicas[0].process.returncode == -signal.SIGKILL
        statuses = [status for _, status, _, _ in results]
        assert len(results) == len(jobs)
        # Only requests in flight at the kill may fail; the rest, on the surviving replica, succeed.
        assert statuses.count(200) >= len(jobs) - 4, statuses
        after = [status for _, status, _, late in results if late]
        assert after and after[-3:] == [200] * len(after[-3:]), after
        assert set(statuses) <= {200, 502}, statuses
        print(f"load: {statuses.count(200)}/{len(jobs)} answered 200, {len(after)} sent after the kill")

        ok_ids = [prediction_id for _, status, prediction_id, _ in results if status == 200]
        assert len(ok_ids) == len(set(ok_ids))
        with store.reading() as session:
            rows = session.execute(select(PredictionRecord.id, PredictionRecord.request_id)).all()
            per_request = dict(
                session.execute(
                    select(PredictionRecord.request_id, func.count()).group_by(PredictionRecord.request_id)
                ).all()
            )
            report = audit.verify(session)
        stored = {row.id for row in rows}
        assert set(ok_ids) <= stored, "a prediction answered with 200 is missing from the database"
        assert max(per_request.values()) == 1, "a request was recorded twice"
        assert len(rows) <= len(jobs)
        assert report.ok, report

        # Any replica answers any history request: the survivor lists what the killed one recorded too.
        history = httpx.get(
            f"{replicas[1].url}{API}/predictions",
            params={"limit": 500},
            headers={"X-API-Key": reader},
            timeout=30,
        )
        assert history.status_code == 200, history.text
        assert history.json()["total"] == len(rows)
        assert {item["id"] for item in history.json()["items"]} == stored
