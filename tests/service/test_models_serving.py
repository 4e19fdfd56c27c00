"""Serving from the registry: models:/NAME@champion, a swap under load with no failed request, a
corrupt version refused while the old one serves, and the registry unreachable at start (degraded)."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from bundled_model import BUNDLED_VERSION
from fastapi import FastAPI
from ports import free_port
from registry_helpers import MlflowServer, derive_package
from sqlalchemy import select

from cxr_pneumonia.registry.lifecycle import Registry
from cxr_pneumonia.store.db.models import AuditEvent

from .conftest import API, Service

pytestmark = pytest.mark.slow


@contextmanager
def uvicorn_server(app: FastAPI) -> Iterator[str]:
    """The app behind a real uvicorn server on a free loopback port, in a thread."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _registry(service: Service, server: MlflowServer) -> Registry:
    """The registry on the mlflow server, auditing into the service's store."""
    return Registry(service.settings.model_copy(update={"mlflow_tracking_uri": server.url}), service.store)


def _events(service: Service, action: str) -> list[AuditEvent]:
    with service.store.reading() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


@pytest.fixture
def registered(
    mlflow_server: MlflowServer, bundled_model_path: Path, tmp_path: Path
) -> Callable[..., Service]:
    """A service whose champion is models:/<name>@champion on the mlflow server."""

    def make(make_service: Callable[..., Service], name: str, **overrides: object) -> Service:
        settings: dict[str, object] = {"model_poll_seconds": 0, **overrides}  # a test may poll
        return make_service(
            own_predictor=True,
            model_uri=f"models:/{name}@champion",
            mlflow_tracking_uri=mlflow_server.url,
            **settings,
        )

    return make


def test_an_alias_moves_under_load_with_no_failed_request_and_a_corrupt_version_is_refused(
    make_service: Callable[..., Service],
    registered: Callable[..., Service],
    mlflow_server: MlflowServer,
    bundled_model_path: Path,
    accepted_images: list[bytes],
    tmp_path: Path,
) -> None:
    name = "swap-under-load"
    bootstrap = make_service()  # a store to audit the registrations in
    registry = _registry(bootstrap, mlflow_server)
    registry.register(bundled_model_path, name, alias="champion")
    better = registry.register(derive_package(bundled_model_path, tmp_path / "v2", version="1.1.0",
                                              temperature_factor=0.97), name)  # fmt: skip
    service = registered(make_service, name)
    ready = service.client.get(f"{API}/health/ready").json()
    assert ready["status"] == "ready" and ready["model"]["registry_version"] == "1"
    admin = service.key("admin")

    results: list[tuple[int, str | None]] = []
    stop = threading.Event()
    with uvicorn_server(service.app) as url:
        headers = service.key("clinician")

        def client(offset: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                for data in itertools.islice(itertools.cycle(accepted_images), offset, None):
                    if stop.is_set():
                        return
                    response = http.post(f"{API}/predict", files={"file": ("x.jpeg", data)}, headers=headers)
                    version = (
                        response.json()["model"]["registry_version"] if response.status_code == 200 else None
                    )
                    results.append((response.status_code, version))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        registry.promote(name, better.version.version, "champion")
        with httpx.Client(base_url=url, timeout=120) as http:
            swapped = http.post(f"{API}/admin/models/reload", headers=admin).json()["results"]
        assert swapped[0]["outcome"] == "swapped" and swapped[0]["model"]["registry_version"] == "2"
        time.sleep(2.0)
        stop.set()
        for thread in threads:
            thread.join(60)
    statuses = {status for status, _ in results}
    assert statuses == {200}, f"failed requests during the swap: {[r for r in results if r[0] != 200]}"
    versions = [version for _, version in results]
    assert "1" in versions and versions[-1] == "2" and len(results) >= 10
    assert versions.index("2") > versions.index("1")
    listed = service.client.get(f"{API}/models", headers=admin).json()["models"]
    assert [(m["role"], m["registry_version"]) for m in listed] == [("champion", "2")]
    served = {  # cxr_model_info: the new champion is 1, the one swapped out 0 (not left at 1)
        dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))["version"]: float(line.rsplit(" ", 1)[1])
        for line in service.client.get("/metrics").text.splitlines()
        if line.startswith("cxr_model_info{")
    }
    assert served.get("1.1.0") == 1.0 and served.get(BUNDLED_VERSION) == 0.0, served

    # a version whose files do not match their recorded sha256 is refused; the old one keeps serving
    corrupt = registry.register(derive_package(bundled_model_path, tmp_path / "v3", version="1.2.0",
                                               temperature_factor=0.95), name)  # fmt: skip
    onnx = next(mlflow_server.artifacts.rglob(f"{corrupt.version.run_id}/artifacts/model/model.onnx"))
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    registry.promote(name, corrupt.version.version, "champion")
    refused = service.client.post(f"{API}/admin/models/reload", headers=admin).json()["results"]
    assert refused[0]["outcome"] == "refused" and "sha256" in refused[0]["detail"]
    answer = service.predict(accepted_images[0])
    assert answer.status_code == 200 and answer.json()["model"]["registry_version"] == "2"
    outcomes = [(e.outcome, e.detail["role"]) for e in _events(service, "model_swap")]
    assert ("ok", "champion") in outcomes and ("refused", "champion") in outcomes


def test_the_registry_unreachable_at_start_serves_the_cached_package_degraded(
    make_service: Callable[..., Service],
    registered: Callable[..., Service],
    mlflow_server: MlflowServer,
    bundled_model_path: Path,
    chest_jpeg: bytes,
    tmp_path: Path,
) -> None:
    name = "cached-when-unreachable"
    data_dir = tmp_path / "shared-data"
    bootstrap = make_service(data_dir=data_dir)
    _registry(bootstrap, mlflow_server).register(bundled_model_path, name, alias="champion")
    online = registered(make_service, name, data_dir=data_dir)
    assert online.client.get(f"{API}/health/ready").json()["status"] == "ready"
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    offline = make_service(own_predictor=True, data_dir=data_dir, model_uri=f"models:/{name}@champion",
                           mlflow_tracking_uri=dead, model_poll_seconds=0)  # fmt: skip
    ready = offline.client.get(f"{API}/health/ready")
    body = ready.json()
    assert ready.status_code == 200 and body["status"] == "degraded"
    assert body["model"]["registry_version"] == "1" and "unreachable" in body["reasons"][0]
    answer = offline.predict(chest_jpeg)
    assert answer.status_code == 200 and answer.json()["model"]["registry_version"] == "1"
    # without a cached package there is nothing to serve: not ready, with the reason
    empty = make_service(own_predictor=True, model_uri=f"models:/{name}@champion", mlflow_tracking_uri=dead)
    assert empty.client.get(f"{API}/health/ready").status_code == 503


def test_the_service_follows_a_moved_alias_by_itself(
    make_service: Callable[..., Service],
    registered: Callable[..., Service],
    mlflow_server: MlflowServer,
    bundled_model_path: Path,
    chest_jpeg: bytes,
    tmp_path: Path,
) -> None:
    """CXR_MODEL_POLL_SECONDS: no reload call, the poller notices the alias moved and swaps."""
    name = "followed-by-polling"
    registry = _registry(make_service(), mlflow_server)
    registry.register(bundled_model_path, name, alias="champion")
    second = registry.register(derive_package(bundled_model_path, tmp_path / "v2", version="1.1.0",
                                              temperature_factor=0.97), name)  # fmt: skip
    service = registered(make_service, name, model_poll_seconds=0.5)
    with uvicorn_server(service.app) as url:  # the app's lifespan starts the poller
        registry.promote(name, second.version.version, "champion")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = httpx.get(f"{url}{API}/health/ready", timeout=10).json()
            if ready["model"]["registry_version"] == "2":
                break
            time.sleep(0.5)
        assert ready["model"]["registry_version"] == "2"
        answer = httpx.post(f"{url}{API}/predict", files={"file": ("x.jpeg", chest_jpeg)},
                            headers=service.key("clinician"), timeout=60)  # fmt: skip
        assert answer.json()["model"]["registry_version"] == "2"
