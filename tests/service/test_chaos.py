"""Chaos, as tests: what already holds must keep holding.

(a) `kill -9` of `cxr serve` under a bounded load, restarted on the same database: every 200's id is
found with the same result and the audit chain verifies. (c) The database unreachable for a while
(PostgreSQL behind a proxy the test cuts): /health/ready says so, predictions are a 503 with a
Retry-After, nothing is half written, and the service recovers without a restart.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from cxr_pneumonia.store import audit as audit_chain
from cxr_pneumonia.store.db.models import AuditEvent, PredictionRecord

from .conftest import API, assert_error_body
from .proxy import PausableProxy
from .test_serve import _admin_bearer, _first_login, serving

pytestmark = pytest.mark.slow


def _clinician_key(url: str, username: str, password: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as client:
        bearer = _admin_bearer(client, username, password)  # the printed password must be changed first
        made = client.post(f"{API}/keys", json={"name": "chaos", "role": "clinician"}, headers=bearer)
        assert made.status_code == 201, made.text
        return str(made.json()["api_key"])


def test_kill_9_under_load_loses_and_alters_nothing_answered(
    tmp_path: Path, bundled_model_path: Path, accepted_images: list[bytes]
) -> None:
    answered: dict[str, tuple[str, float]] = {}
    lock = threading.Lock()
    with serving(tmp_path, bundled_model_path) as server:
        key = _clinician_key(server.url, *_first_login(server))
        stop = threading.Event()

        def client(offset: int) -> None:  # 4 clients, one request at a time each: a bounded load
            with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=30) as http:
                i = offset
                while not stop.is_set():
                    try:
                        r = http.post(f"{API}/predict", files={"file": ("x.jpeg", accepted_images[i % 6])})
                    except httpx.TransportError:
                        return  # the server died mid-request: the client cannot know; fine
                    i += 1
                    if r.status_code == 200:
                        body = r.json()
                        with lock:
                            answered[body["id"]] = (body["label"], body["p_pneumonia"])

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(4)
        server.process.kill()  # SIGKILL, mid-load
        server.process.wait(10)
        stop.set()
        for thread in threads:
            thread.join(30)
    assert len(answered) >= 4, "the load never got going"
    with serving(tmp_path, bundled_model_path) as restarted:
        with httpx.Client(base_url=restarted.url, headers={"X-API-Key": key}, timeout=30) as http:
            for prediction_id, (label, p) in answered.items():
                found = http.get(f"{API}/predictions/{prediction_id}")
                assert found.status_code == 200, (prediction_id, found.text)
                assert (found.json()["label"], found.json()["p_pneumonia"]) == (label, p)
        env = {**restarted.env}
    verified = subprocess.run(
        [sys.executable, "-m", "cxr_pneumonia.cli", "audit", "verify"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0 and verified.stdout.startswith("intact"), (
        verified.stdout + verified.stderr
    )


@pytest.mark.postgres
def test_the_database_away_for_a_while(make_service, postgres_url: str, chest_jpeg: bytes) -> None:
    direct = make_url(postgres_url)
    proxy = PausableProxy(direct.host or "127.0.0.1", direct.port or 5432)
    try:
        proxied = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        service = make_service(database_url=proxied)
        key = service.key("clinician")
        assert service.predict(chest_jpeg, key).status_code == 200
        watcher = create_engine(direct)  # counts rows behind the proxy's back

        def counts() -> tuple[int, int]:
            with watcher.connect() as connection:
                records = connection.scalar(select(func.count()).select_from(PredictionRecord))
                events = connection.scalar(select(func.count()).select_from(AuditEvent))
            return int(records or 0), int(events or 0)

        before = counts()
        proxy.cut()
        ready = service.client.get(f"{API}/health/ready")
        assert ready.status_code == 503 and ready.json()["database"]["ok"] is False, ready.text
        for _ in range(3):
            down = service.predict(chest_jpeg, key)
            assert_error_body(down, 503, "database_unavailable")
            assert int(down.headers["retry-after"]) >= 1
        assert counts() == before  # nothing half written
        proxy.restore()
        assert service.client.get(f"{API}/health/ready").status_code == 200
        assert service.predict(chest_jpeg, key).status_code == 200
        assert counts()[0] == before[0] + 1
        with service.store.reading() as session:
            assert audit_chain.verify(session).ok
        watcher.dispose()
    finally:
        proxy.close()
