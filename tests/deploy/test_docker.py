"""deploy/docker: what can be checked without building an image (no container registry here)."""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


DOCKER = REPO_ROOT / "deploy" / "docker"
# Bind-mounted folders that another part of deploy/ provides (Prometheus config, Grafana provisioning).
PROVIDED_ELSEWHERE = {REPO_ROOT / "deploy" / "prometheus", REPO_ROOT / "deploy" / "grafana"}
SERVICES = {"api", "dicom-node", "postgres", "redis", "mlflow", "prometheus", "grafana", "orthanc"}


def _instructions() -> list[tuple[str, str, str]]:
    """(stage, INSTRUCTION, arguments) for every instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    stage, found = "", []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stage = rest.split()[-1]
        found.append((stage, word.upper(), rest.strip()))
    return found


def test_every_copy_source_exists_in_the_build_context() -> None:
    copies = [rest for _, word, rest in _instructions() if word == "COPY"]
    assert copies
    for rest in copies:
        args = shlex.split(rest)
        if any(arg.startswith("--from") for arg in args):
            continue  # from an earlier stage, not the context
        sources = [arg for arg in args if not arg.startswith("--")][:-1]
        for source in sources:
            assert (REPO_ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_the_serving_stage_runs_cxr_as_non_root_with_a_health_check() -> None:
    final = [(word, rest) for stage, word, rest in _instructions() if stage == "serve"]
    words = dict(final)
    assert json.loads(words["ENTRYPOINT"]) == ["cxr"]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["cxr"] == "cxr_pneumonia.cli:app"
    assert json.loads(words["CMD"])[0] == "serve"
    assert words["USER"].split(":")[0] not in {"0", "root"}
    assert "/api/v1/health/live" in words["HEALTHCHECK"]
    # Read-only root: the data dir and model path are set, and the only writable places are volumes.
    env = words["ENV"]
    assert "CXR_DATA_DIR=/var/lib/cxr" in env and "MPLCONFIGDIR=/tmp" in env
    assert "/var/lib/cxr" in words["VOLUME"]
    # The build stage installs the project without extras (no [train]: no PyTorch).
    installs = [rest for stage, word, rest in _instructions() if stage == "build" and "pip install ." in rest]
    assert installs and not any("[" in rest for rest in installs)


def test_the_image_serves_the_bundled_default_model() -> None:
    """The image's model is the one `cxr serve` defaults to on a checkout, not an older package."""
    from cxr_pneumonia.config import BUNDLED_MODEL_NAME

    final = [(word, rest) for stage, word, rest in _instructions() if stage == "serve"]
    models = [shlex.split(rest) for word, rest in final if word == "COPY" and rest.startswith("models/")]
    assert models == [[f"models/{BUNDLED_MODEL_NAME}/", f"/opt/models/{BUNDLED_MODEL_NAME}/"]]
    assert f"CXR_MODEL_PATH=/opt/models/{BUNDLED_MODEL_NAME}" in dict(final)["ENV"]


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_the_serving_requirements_resolve_without_torch_or_cuda(tmp_path: Path) -> None:
    if not _pypi_reachable():
        pytest.skip("PyPI (pypi.org:443) is not reachable: cannot resolve the serving requirements")
    report = tmp_path / "report.json"
    # What the Dockerfile's build stage runs (`pip install .`), resolved from PyPI without installing.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--index-url", "https://pypi.org/simple", "--report", str(report), str(REPO_ROOT)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {"onnxruntime", "fastapi", "pydicom", "cxr-pneumonia"} <= names
    heavy = {n for n in names if n.startswith(("torch", "nvidia-", "triton")) or "cuda" in n}
    assert not heavy, f"the serving image would pull {sorted(heavy)}"


def test_compose_names_only_services_it_defines() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) >= SERVICES
    volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert set(depends) <= set(services), f"{name} depends on an undefined service"
        for mount in service.get("volumes") or []:
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                path = (DOCKER / source).resolve()
                if path in PROVIDED_ELSEWHERE and not path.exists():
                    continue  # provided by deploy/prometheus, deploy/grafana
                assert path.exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in volumes, f"{name} mounts the undeclared volume {source}"
        build = service.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    # The service and the DICOM node share the database and Redis, and no secret value is in the file.
    for name in ("api", "dicom-node"):
        env = services[name]["environment"]
        assert "@postgres:5432/" in env["CXR_DATABASE_URL"] and env["CXR_REDIS_URL"].startswith(
            "redis://redis:"
        )
        assert env["CXR_JWT_SECRET"].startswith("${")
        assert services[name]["read_only"] is True
    assert services["dicom-node"]["environment"]["CXR_DICOM_DESTINATION"].endswith("@orthanc:4242")
