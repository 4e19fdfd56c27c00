"""deploy/k8s: every overlay renders with kustomize and every object validates against Kubernetes' schemas."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


K8S = REPO_ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"
OVERLAYS = ["dev", "prod"]
# Kinds kubernetes-validate has no schema for; docs/deploy.md lists them as unvalidated.
UNVALIDATED = {"monitoring.coreos.com/v1/ServiceMonitor"}


def _render(overlay: str, missing: Callable[[str], None]) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        missing("kubectl is not installed: cannot render the kustomize overlays")
    result = subprocess.run(
        [str(kubectl), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, missing: Callable[[str], None]
) -> tuple[Path, list[Any]]:
    text = _render(request.param, missing)
    path = tmp_path_factory.mktemp(request.param) / "rendered.yaml"
    path.write_text(text)
    return path, [doc for doc in yaml.safe_load_all(text) if doc]


def _kinds(objects: list[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for obj in objects:
        found.setdefault(obj["kind"], []).append(obj)
    return found


def test_every_object_validates_strictly(
    rendered: tuple[Path, list[Any]], missing: Callable[[str], None]
) -> None:
    path, objects = rendered
    validator = Path(sys.executable).with_name("kubernetes-validate")
    if not validator.exists():
        missing("kubernetes-validate is not installed (pip install -e '.[dev]')")
    result = subprocess.run(
        [str(validator), "--strict", "-k", KUBERNETES_VERSION, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = output.count(" passed for resource ")
    warned = output.count("Couldn't find schema")
    # Every object is either validated or one of the documented unvalidated kinds: nothing slips through.
    assert passed + warned == len(objects), output
    assert warned == sum(1 for o in objects if f"{o['apiVersion']}/{o['kind']}" in UNVALIDATED), output
    docs = (REPO_ROOT / "docs" / "deploy.md").read_text()
    for kind in UNVALIDATED:
        assert kind.rsplit("/", 1)[1] in docs


def test_the_overlay_has_every_piece_the_design_names(rendered: tuple[Path, list[Any]]) -> None:
    _, objects = rendered
    kinds = _kinds(objects)
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
                 "ConfigMap", "Job", "StatefulSet", "ServiceMonitor", "ServiceAccount"):  # fmt: skip
        assert kind in kinds, f"no {kind}"
    assert "Secret" not in kinds, "secret values do not belong in git"
    assert len({o["metadata"].get("namespace") for o in objects}) == 1


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["spec"]["template"]["spec"]["containers"])


def test_pods_run_non_root_read_only_with_probes_and_resources(rendered: tuple[Path, list[Any]]) -> None:
    _, objects = rendered
    kinds = _kinds(objects)
    for obj in kinds["Deployment"] + kinds["StatefulSet"] + kinds["Job"]:
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in _containers(obj):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["requests"] and container["resources"]["limits"]
            assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp", "/var/lib/cxr"}
            refs = [e.get("secretRef", {}).get("name") for e in container.get("envFrom", [])]
            assert "cxr-secrets" in refs
    (api,) = kinds["Deployment"]
    (container,) = _containers(api)
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/v1/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/health/ready"
    assert api["spec"]["template"]["spec"]["topologySpreadConstraints"]
    (hpa,) = kinds["HorizontalPodAutoscaler"]
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Pods"]["pods"]["metric"]["name"] == "cxr_http_requests_in_flight"
    (node,) = kinds["StatefulSet"]
    claims = [t["metadata"]["name"] for t in node["spec"]["volumeClaimTemplates"]]
    assert [
        m["name"] for m in _containers(node)[0]["volumeMounts"] if m["mountPath"] == "/var/lib/cxr"
    ] == claims


def test_the_service_monitor_scrapes_the_api_service(rendered: tuple[Path, list[Any]]) -> None:
    """The fields of the one unvalidated kind, checked here: it selects the Service and names its port."""
    _, objects = rendered
    kinds = _kinds(objects)
    (monitor,) = kinds["ServiceMonitor"]
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(monitor["spec"]) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
    services = [s for s in kinds["Service"] if s["metadata"]["name"] == "cxr-api"]
    (service,) = services
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
        assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
