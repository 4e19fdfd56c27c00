"""deploy/prometheus and deploy/grafana against the real thing: promtool checks and unit-tests the alert
rules; a real Prometheus on loopback scrapes a real `cxr serve` and sees the drift alarm become 1 after
brightness/contrast-shifted Kermany images; every Grafana panel's metric exists on that /metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from ports import free_port

from cxr_pneumonia.config import Settings
from cxr_pneumonia.store import accounts
from cxr_pneumonia.store.facade import Store
from cxr_pneumonia.store.security.roles import Role

from .conftest import API
from .serving import Server, serving

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# a small window so a few dozen images make a verdict (the service reads these through Settings)
MONITORING_ENV = {
    "CXR_MONITORING_WINDOW": "30",
    "CXR_MONITORING_MIN_COUNT": "20",
    "CXR_MONITORING_EVAL_EVERY": "5",
    "CXR_MONITORING_EVAL_SECONDS": "1",
    "CXR_MONITORING_PERSISTENCE": "2",
    "CXR_MONITORING_MIN_REVIEWS": "3",
}


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed in CI: .ci/prometheus.sh should have installed it")
        pytest.skip(f"{name} is not installed: run .ci/prometheus.sh (Debian's prometheus package)")
    return found


def test_promtool_checks_and_unit_tests_the_alert_rules() -> None:
    promtool = _binary("promtool")
    for args in (
        ["check", "rules", "alerts.yml"],
        ["check", "config", "prometheus.yml"],
        ["test", "rules", "alerts_test.yml"],
    ):
        done = subprocess.run([promtool, *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@dataclass
class Served:
    """A real `cxr serve` of the monitored package, and the traffic it is sent (once, on demand)."""

    server: Server
    headers: dict[str, str]
    images: list[bytes]
    reviewed_images: list[bytes]  # in-population pneumonia images, reviewed as such
    predictions: int = 0

    def send_traffic(self) -> None:
        """The shifted images, one unreadable upload, four reviewed cases (on the first call only)."""
        if self.predictions:
            return
        ids = []
        with httpx.Client(base_url=self.server.url, headers=self.headers, timeout=60) as client:
            for image in self.images:
                response = client.post(f"{API}/predict", files={"file": ("x.jpeg", image)})
                if response.status_code == 200:
                    ids.append(response.json()["id"])
            assert client.post(f"{API}/predict", files={"file": ("x.png", b"nope")}).status_code == 400
            normal = client.post(f"{API}/predictions/{ids[0]}/review", json={"label": "normal"})
            assert normal.status_code == 201, normal.text
            for image in self.reviewed_images:
                response = client.post(f"{API}/predict", files={"file": ("x.jpeg", image)})
                assert response.status_code == 200, response.text
                reviewed = client.post(
                    f"{API}/predictions/{response.json()['id']}/review", json={"label": "pneumonia"}
                )
                assert reviewed.status_code == 201, reviewed.text
        assert len(ids) >= 30, f"only {len(ids)} shifted images accepted"
        self.predictions = len(ids)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    monitored_model_path: Path,
    kermany: Path,
    shifted: Callable[..., bytes],
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("deploy")
    store = Store.from_settings(Settings(_env_file=None, data_dir=tmp / "data", database_url=None))  # type: ignore[call-arg]
    with store.transaction() as session:
        _, token = accounts.create_key(session, "deploy-test", Role.CLINICIAN, created_by="test")
    store.close()
    images = [shifted(p) for p in sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[:40]]
    with serving(tmp, monitored_model_path, env=MONITORING_ENV) as server:
        reviewed = [p.read_bytes() for p in sorted((kermany / "train" / "PNEUMONIA").glob("*.jpeg"))[200:203]]
        yield Served(server, {"X-API-Key": token}, images, reviewed)


def _query(url: str, query: str) -> float | None:
    try:
        result = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()["data"]["result"]
    except (httpx.TransportError, ValueError, KeyError):
        return None
    return float(result[0]["value"][1]) if result else None


def _until(
    url: str, query: str, expected: float, timeout: float = 60.0, at_least: bool = False
) -> float | None:
    """Poll until the query gives ``expected`` (or, with ``at_least``, no less): Prometheus answers from
    its last scrape, which may predate what the test just did."""
    deadline = time.monotonic() + timeout

    def reached(value: float | None) -> bool:
        return value is not None and (value >= expected if at_least else value == expected)

    value = _query(url, query)
    while not reached(value) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = _query(url, query)
    return value


@contextmanager
def _prometheus(tmp: Path, target: str) -> Iterator[str]:
    prometheus = _binary("prometheus")
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: cxr\n    static_configs:\n      - targets: ['{target}']\n"
    )
    log = (tmp / "prometheus.log").open("w")
    process = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_prometheus_scrapes_the_service_and_sees_the_drift_alarm(served: Served, tmp_path: Path) -> None:
    alarm = 'cxr_drift_alarm{kind="input"}'
    with _prometheus(tmp_path, served.server.url.removeprefix("http://")) as url:
        log = tmp_path / "prometheus.log"
        assert _until(url, 'up{job="cxr"}', 1.0) == 1.0, log.read_text()[-2000:]
        assert _until(url, alarm, 0.0) == 0.0  # exported, and quiet, before any input
        served.send_traffic()
        assert _until(url, alarm, 1.0) == 1.0, log.read_text()[-2000:]
        # The scrape that first saw the alarm may have come while the traffic was still arriving.
        assert (_until(url, "cxr_window_inputs", 30, at_least=True) or 0) >= 30


METRIC = re.compile(r"\b(cxr_[a-z0-9_]+)")


def test_every_grafana_panel_uses_metrics_the_service_exports(served: Served) -> None:
    served.send_traffic()  # labelled series (predictions by label, reviewed by model) appear once used
    exposition = httpx.get(f"{served.server.url}/metrics", timeout=10).text
    exported = {
        line.split("{")[0].split(" ")[0] for line in exposition.splitlines() if line.startswith("cxr_")
    }
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "cxr-monitoring.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(expressions) >= 10
    used = {name for expr in expressions for name in METRIC.findall(expr)}
    assert used - exported == set(), f"panels use metrics /metrics does not export: {used - exported}"
    rules = "\n".join(  # the alert rules' expressions too (comments name source files)
        line for line in (DEPLOY / "prometheus" / "alerts.yml").read_text().splitlines()
        if not line.lstrip().startswith("#")
    )  # fmt: skip
    assert set(METRIC.findall(rules)) - exported == set()
