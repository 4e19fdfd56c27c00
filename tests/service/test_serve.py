"""A real `cxr serve` on a loopback port: the new-user walk, and metrics summed over several workers."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import API
from .serving import Server, serving

pytestmark = pytest.mark.slow


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
