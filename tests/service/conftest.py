"""Service fixtures: an app on a temporary SQLite database, credentials per role, real radiographs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from cxr_pneumonia.config import Settings
from cxr_pneumonia.errors import CXRError
from cxr_pneumonia.inference import Predictor
from cxr_pneumonia.service.app import create_app
from cxr_pneumonia.store import accounts
from cxr_pneumonia.store.db.engine import normalise_url
from cxr_pneumonia.store.facade import Store
from cxr_pneumonia.store.security.roles import Role

API = "/api/v1"


def service_settings(data_dir: Path, model_path: Path, **overrides: Any) -> Settings:
    """Settings that ignore the developer's environment and .env: every value a test relies on is here."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "model_path": model_path,
        "database_url": None,
        "redis_url": None,
        "store_images": False,
        "image_key": None,
        "image_key_file": None,
        "jwt_secret": None,
        "metrics_public": True,
        "rate_limit": "10000/minute",
        "rate_limit_client": "10000/minute",
        "rate_limit_anonymous": "10000/minute",
        "web_dir": data_dir / "no-web-page",
        "prometheus_multiproc_dir": None,
        "max_bytes": 64 * 1024 * 1024,
        "batch_max_files": 32,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Service:
    """An app, a client and helpers to mint credentials for it."""

    app: FastAPI
    client: TestClient
    settings: Settings
    _keys: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.app.state.cxr.store

    def close(self) -> None:
        """What the app's shutdown does (a TestClient not used as a context manager never runs it): the
        drift monitors' writers stop before the store, so none writes into a dropped database."""
        self.client.close()
        state = self.app.state.cxr
        state.models.close()
        if state.monitors is not None:
            state.monitors.close()
        state.store.close()

    def key(self, role: str) -> dict[str, str]:
        """X-API-Key headers for a key of this role (one per role, created on first use)."""
        if role not in self._keys:
            with self.store.transaction() as session:
                _, token = accounts.create_key(session, f"test-{role}", Role(role), created_by="test")
            self._keys[role] = {"X-API-Key": token}
        return self._keys[role]

    def user(self, username: str, role: str, password: str = "correct horse battery") -> dict[str, str]:
        """Bearer headers for a new user, obtained through the real login route."""
        with self.store.transaction() as session:
            accounts.create_user(session, username, Role(role), password, created_by="test")
        response = self.client.post(f"{API}/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def predict(
        self, data: bytes, headers: dict[str, str] | None = None, name: str = "x.jpeg", **params: Any
    ) -> Any:
        return self.client.post(
            f"{API}/predict",
            files={"file": (name, data)},
            headers=headers or self.key("clinician"),
            params=params,
        )


@pytest.fixture
def make_service(
    tmp_path: Path, bundled_model_path: Path, predictor: Predictor
) -> Iterator[Callable[..., Service]]:
    """Build a service; keyword arguments override settings. The session's predictor is shared."""
    built: list[Service] = []

    def make(
        *, own_predictor: bool = False, raise_server_exceptions: bool = True, **overrides: Any
    ) -> Service:
        data_dir = overrides.pop("data_dir", tmp_path / f"data{len(built)}")  # shared: "replicas"
        model_path = overrides.pop("model_path", bundled_model_path)
        settings = service_settings(data_dir, model_path, **overrides)
        app = create_app(settings, None if own_predictor else predictor)
        client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
        service = Service(app, client, settings)
        built.append(service)
        return service

    yield make
    for service in built:
        service.close()


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    return make_service()


@pytest.fixture(scope="session")
def accepted_images(kermany: Path, predictor: Predictor) -> list[bytes]:
    """Real Kermany test images the served model accepts (a weak package refuses some as out of
    distribution; tests about something else than refusal need inputs it reads)."""
    found: list[bytes] = []
    for path in sorted((kermany / "test").glob("*/*.jpeg")):
        data = path.read_bytes()
        try:
            predictor.predict(data, use_cache=False)
        except CXRError:
            continue
        found.append(data)
        if len(found) == 6:
            return found
    pytest.fail("the served model accepts none of the first Kermany test images")


@pytest.fixture(scope="session")
def chest_jpeg(accepted_images: list[bytes]) -> bytes:
    return accepted_images[0]


@pytest.fixture(scope="session")
def dicom_chest(shared_dicom: Path) -> bytes:
    return (shared_dicom / "cr-chest-monochrome2-jpeg-baseline.dcm").read_bytes()


def assert_error_body(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The stable error body, the request id in body and header, and no trace."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "detail", "request_id"}
    assert body["request_id"] and body["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert body["error"] == code, body
    assert "Traceback" not in response.text
    return body


def env_without_cxr() -> dict[str, str]:
    """The environment for a subprocess, minus any CXR_* a developer may have exported."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("CXR_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new database on the test server (CXR_TEST_POSTGRES_URL), dropped afterwards."""
    url = os.environ.get("CXR_TEST_POSTGRES_URL")
    if not url:
        pytest.skip('CXR_TEST_POSTGRES_URL is unset: start PostgreSQL with eval "$(bash .ci/services.sh)"')
    server = normalise_url(url)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"cxr_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("CXR_TEST_REDIS_URL")
    if not url:
        pytest.skip('CXR_TEST_REDIS_URL is unset: start Redis with eval "$(bash .ci/services.sh)"')
    return url
