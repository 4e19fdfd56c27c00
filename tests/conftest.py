"""Shared fixtures: where the real data lives, and the bundled model package."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from ports import free_port
from registry_helpers import MlflowServer, require_mlflow

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory):
    """Tests never write into the checkout's var/ (MLflow store, databases): a temp data dir instead."""
    from cxr_pneumonia.config import get_settings

    previous = os.environ.get("CXR_DATA_DIR")
    os.environ["CXR_DATA_DIR"] = str(tmp_path_factory.mktemp("cxr-data"))
    get_settings.cache_clear()
    yield
    if previous is None:
        os.environ.pop("CXR_DATA_DIR", None)
    else:
        os.environ["CXR_DATA_DIR"] = previous
    get_settings.cache_clear()


def shared_data_dir() -> Path | None:
    """../shared/data beside the checkout, or CXR_SHARED_DATA; None when absent."""
    candidates = [os.environ.get("CXR_SHARED_DATA"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("real data not found: ../shared/data is absent and CXR_SHARED_DATA is unset")
    return path


@pytest.fixture(scope="session")
def kermany(shared_data: Path) -> Path:
    path = shared_data / "kermany"
    if not path.is_dir():
        pytest.skip(f"Kermany data not found at {path}")
    return path


@pytest.fixture(scope="session")
def shared_dicom(shared_data: Path) -> Path:
    path = shared_data / "dicom"
    if not path.is_dir():
        pytest.skip(f"DICOM samples not found at {path}")
    return path


@pytest.fixture(scope="session")
def pydicom_data_file():
    """Look up a file of the PyPI package pydicom-data (a test dependency) by name."""
    pytest.importorskip("data_store", reason="pydicom-data (module data_store) is not installed")
    from pydicom.data import get_testdata_file

    def find(name: str) -> Path:
        path = get_testdata_file(name)
        if path is None:
            pytest.skip(f"{name} is not available from pydicom-data")
        return Path(str(path))

    return find


@pytest.fixture(scope="session")
def bundled_model_path() -> Path:
    """The bundled package (CXR_TEST_MODEL overrides it, e.g. to try a freshly trained one)."""
    from cxr_pneumonia.config import default_model_path

    override = os.environ.get("CXR_TEST_MODEL")
    path = Path(override) if override else default_model_path()
    if not (path / "model.json").is_file():
        pytest.fail(f"the bundled model package is missing at {path}")
    return path


@pytest.fixture(scope="session")
def predictor(bundled_model_path: Path):
    from cxr_pneumonia.inference import Predictor

    return Predictor.from_package(bundled_model_path)


@pytest.fixture(scope="session")
def monitored_model_path(
    bundled_model_path: Path, kermany: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The bundled package with a small monitoring reference (60 Kermany train images, never test),
    made by the same code as `cxr monitor reference`: what the online monitor needs to run."""
    from cxr_pneumonia.inference import Predictor
    from cxr_pneumonia.monitoring.packaging import write_with_reference
    from cxr_pneumonia.monitoring.reference import build_reference

    images = sorted((kermany / "train" / "NORMAL").glob("*.jpeg"))[:30]
    images += sorted((kermany / "train" / "PNEUMONIA").glob("*.jpeg"))[:30]
    predictor = Predictor.from_package(bundled_model_path)
    reference = build_reference(predictor, images, info={"selection": "test fixture: 60 train images"})
    out = tmp_path_factory.mktemp("monitored") / "pkg"
    write_with_reference(predictor.package, reference, out)
    return out


# ---- drift: a new X-ray machine, and more images of the model's own population ------------------
def shifted_jpeg(path: Path, *, gain: float = 0.55, offset: float = 95.0) -> bytes:
    """The image with its contrast lowered and brightness raised, re-encoded as JPEG."""
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    out = Image.fromarray(np.clip(pixels * gain + offset, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    out.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def in_population(kermany: Path, n: int, offset: int = 100) -> list[Path]:
    """Train images beyond the ones the test reference was made from (the fixture uses the first 30)."""
    normal = sorted((kermany / "train" / "NORMAL").glob("*.jpeg"))[offset : offset + n // 2]
    pneumonia = sorted((kermany / "train" / "PNEUMONIA").glob("*.jpeg"))[offset : offset + n - n // 2]
    return [p for pair in zip(normal, pneumonia, strict=False) for p in pair]


@pytest.fixture(scope="session")
def shifted() -> Callable[..., bytes]:
    return shifted_jpeg


@pytest.fixture(scope="session")
def in_population_images(kermany: Path) -> Callable[[int], list[Path]]:
    return lambda n: in_population(kermany, n)


# ---- the model registry: a real `mlflow server` ---------------------------------------------------
@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """`mlflow server` on a free loopback port: SQLite backend, local artifact root, one worker and no
    job runners (~5 s to start, ~480 MB), shared by every registry test of the session."""
    require_mlflow()
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # ~5 s on a quiet machine; far more beside a training run
        while time.monotonic() < deadline:
            assert process.poll() is None, (root / "server.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start in 300 s")
        yield MlflowServer(url, root / "artifacts")
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server and the uvicorn worker it started
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _missing(reason: str) -> None:
    """A component a test needs is absent: skip on a developer's machine, fail in CI (CI=true)."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI=true: .ci/run should have provided it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def missing():
    """Call missing(reason) where a component is absent: a skip here, a failure in CI."""
    return _missing


# ---- a DVC-tracked dataset: a temporary git + DVC repository of real Kermany images --------------
@dataclass(frozen=True)
class DvcRepo:
    root: Path  # the git + DVC repository
    dataset: Path  # root/xrays, tracked by root/xrays.dvc
    run: Callable[..., str]  # run("git", "status") in the repository: its stdout

    def head(self) -> str:
        return self.run("git", "rev-parse", "HEAD").strip()

    def dvc_md5(self, dvc_file: str = "xrays.dvc") -> str:
        import yaml

        return str(yaml.safe_load((self.root / dvc_file).read_text())["outs"][0]["md5"])


@pytest.fixture
def dvc_repo(kermany: Path, tmp_path: Path, missing) -> DvcRepo:
    """12 real images (6 normal, 3 bacterial, 3 viral) copied into tmp_path (never into this
    repository), `dvc add`-ed, pushed to a local remote and committed (docs/data.md's steps)."""
    dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    if not Path(dvc).is_file() or shutil.which("git") is None:
        missing("the dvc command (dev extra) and git are needed for the DVC tests")
    root = tmp_path / "data-repo"
    dataset = root / "xrays"
    train = kermany / "train"
    picks = {
        "NORMAL": sorted((train / "NORMAL").glob("IM-*.jpeg"))[:6],
        "PNEUMONIA": sorted((train / "PNEUMONIA").glob("*_bacteria_*.jpeg"))[:3]
        + sorted((train / "PNEUMONIA").glob("*_virus_*.jpeg"))[:3],
    }
    for label, files in picks.items():
        (dataset / label).mkdir(parents=True)
        for image in files:
            shutil.copy2(image, dataset / label / image.name)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_CONFIG_GLOBAL": os.devnull}

    def run(*command: str) -> str:
        program = dvc if command[0] == "dvc" else command[0]
        done = subprocess.run(
            [program, *command[1:]], cwd=root, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
        return done.stdout

    run("git", "init", "-q")
    run("git", "config", "user.email", "data@example.org")
    run("git", "config", "user.name", "Data Steward")
    run("dvc", "init", "-q")
    run("dvc", "remote", "add", "-d", "local", str(tmp_path / "dvc-remote"))
    run("dvc", "add", "-q", "xrays")
    run("dvc", "push", "-q")
    run("git", "add", "xrays.dvc", ".gitignore", ".dvc/config", ".dvc/.gitignore")
    run("git", "commit", "-q", "-m", "Kermany sample under DVC")
    return DvcRepo(root, dataset, run)
