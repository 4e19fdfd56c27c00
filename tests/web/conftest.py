"""Browser fixtures: a real `cxr serve` on loopback, Debian's Chromium driven by Playwright, screenshots.

Chromium comes from Debian (`.ci/browser.sh` installs it), never from a Playwright download; the tests
skip, saying so, when /usr/bin/chromium is absent. Screenshots go to test-artifacts/web/.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from ports import free_port

from cxr_pneumonia.errors import CXRError
from cxr_pneumonia.inference import Prediction, Predictor

REPO_ROOT = Path(__file__).resolve().parents[2]

CHROMIUM = Path(os.environ.get("CXR_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "web"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
API = "/api/v1"
START_TIMEOUT_S = 90.0
PASSWORD = "a-long-test-password-1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


# ---- the server ---------------------------------------------------------------------------------
def _cxr_command() -> list[str]:
    beside = Path(sys.executable).parent / "cxr"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("cxr")
    if found:
        return [found]
    return [sys.executable, "-m", "cxr_pneumonia.cli"]


@dataclass
class Server:
    """A running `cxr serve`, its first-run admin login, and API helpers for test set-up."""

    url: str
    admin_username: str
    admin_password: str
    log_path: Path
    process: subprocess.Popen[bytes]
    _admin_headers: dict[str, str] = field(default_factory=dict)
    _count: int = 0

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60.0)

    def token(self, username: str, password: str) -> dict[str, str]:
        with self.client() as client:
            response = client.post(f"{API}/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def replace_first_password(self) -> None:
        """The printed password only allows setting a new one: set it, as the first admin would."""
        with self.client() as client:
            first = client.post(
                f"{API}/auth/token", data={"username": self.admin_username, "password": self.admin_password}
            )
            assert first.json()["restriction"] == "password_change", first.text
            change = {"current_password": self.admin_password, "new_password": PASSWORD}
            headers = {"Authorization": f"Bearer {first.json()['access_token']}"}
            assert client.post(f"{API}/auth/password", json=change, headers=headers).status_code == 204
        self.admin_password = PASSWORD

    def admin(self) -> dict[str, str]:
        if self.admin_password != PASSWORD:
            self.replace_first_password()
        if not self._admin_headers:
            self._admin_headers = self.token(self.admin_username, self.admin_password)
        return self._admin_headers

    def unique(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def create_user(self, role: str, username: str | None = None) -> tuple[str, str]:
        """A new user of this role (set up through the admin API); returns (username, password)."""
        username = username or self.unique(f"test-{role}-")
        with self.client() as client:
            response = client.post(
                f"{API}/users",
                headers=self.admin(),
                json={"username": username, "role": role, "password": PASSWORD},
            )
        assert response.status_code == 201, response.text
        return username, PASSWORD

    def set_active(self, username: str, active: bool) -> None:
        with self.client() as client:
            response = client.post(
                f"{API}/users/{username}/{'enable' if active else 'disable'}", headers=self.admin()
            )
        assert response.status_code == 200, response.text

    def create_key(self, role: str) -> str:
        with self.client() as client:
            response = client.post(
                f"{API}/keys", headers=self.admin(), json={"name": self.unique("key "), "role": role}
            )
        assert response.status_code == 201, response.text
        return str(response.json()["api_key"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _wait_for_start(process: subprocess.Popen[bytes], log_path: Path, url: str) -> tuple[str, str]:
    """The first-run login printed by `cxr serve`, once /health/ready answers."""
    deadline = time.monotonic() + START_TIMEOUT_S
    login: tuple[str, str] | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"cxr serve exited with {process.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        text = log_path.read_text(errors="replace")
        if login is None:
            user = re.search(r"^\s+username:\s+(\S+)\s*$", text, re.MULTILINE)
            password = re.search(r"^\s+password:\s+(\S+)\s*$", text, re.MULTILINE)
            if user and password:
                login = (user.group(1), password.group(1))
        if login is not None:
            try:
                if httpx.get(f"{url}{API}/health/ready", timeout=5.0).status_code == 200:
                    return login
            except httpx.HTTPError:
                pass
        time.sleep(0.25)
    raise RuntimeError(
        f"cxr serve did not become ready in {START_TIMEOUT_S:.0f} s:\n{log_path.read_text(errors='replace')}"
    )


@contextmanager
def running_server(data_dir: Path, model_path: Path, **settings: str) -> Iterator[Server]:
    """`cxr serve` on a free loopback port with a fresh data directory (so it prints a first-run login);
    ``settings`` are extra CXR_* variables (name without the prefix)."""
    log_path = data_dir / "serve.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("CXR_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update(
        {
            "CXR_DATA_DIR": str(data_dir),
            "CXR_MODEL_PATH": str(model_path),
            # Every test signs in from 127.0.0.1; the default per-address limits are for the internet.
            "CXR_RATE_LIMIT": "5000/minute",
            "CXR_RATE_LIMIT_CLIENT": "20000/minute",
            "CXR_RATE_LIMIT_ANONYMOUS": "5000/minute",
            "CXR_INTRA_OP_THREADS": "1",
        }
    )
    env.update({f"CXR_{name.upper()}": value for name, value in settings.items()})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*_cxr_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=data_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        username, password = _wait_for_start(process, log_path, url)
        yield Server(url, username, password, log_path, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log_path, ARTIFACTS / f"serve-{data_dir.name}.log")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, bundled_model_path: Path) -> Iterator[Server]:
    """The service as `make run` starts it (images are not kept)."""
    with running_server(tmp_path_factory.mktemp("web-serve"), bundled_model_path) as running:
        running.replace_first_password()  # the browser walk through it is tests/web/test_web_security.py
        yield running


# ---- inputs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chest:
    path: Path
    prediction: Prediction  # what the served model says about it (the page must say the same)


def _kermany_candidates(kermany: Path, count: int = 40) -> list[Path]:
    """The first test images of each class, alternating pneumonia and normal."""
    pneumonia = sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[:count]
    normal = sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[:count]
    return [path for pair in zip(pneumonia, normal, strict=False) for path in pair]


@pytest.fixture(scope="session")
def accepted_chests(kermany: Path, predictor: Predictor) -> list[Chest]:
    """Real Kermany test radiographs the served model reads (a weak package refuses some as out of
    distribution), pneumonia and normal alternately. Never copied: uploaded from ../shared/data."""
    found: list[Chest] = []
    for path in _kermany_candidates(kermany):
        try:
            found.append(Chest(path, predictor.predict(path, use_cache=False)))
        except CXRError:
            continue
        if len(found) == 3:
            return found
    pytest.fail("the served model accepts none of the first Kermany test images")


@pytest.fixture(scope="session")
def referred_chest(kermany: Path, predictor: Predictor) -> Chest:
    """A real radiograph the served model answers but refers to a radiologist (unsure, or atypical)."""
    for path in _kermany_candidates(kermany):
        try:
            prediction = predictor.predict(path, use_cache=False)
        except CXRError:
            continue
        if prediction.refer:
            return Chest(path, prediction)
    pytest.skip("the served model refers none of the first 80 Kermany test images")


@pytest.fixture(scope="session")
def chest(accepted_chests: list[Chest]) -> Chest:
    return accepted_chests[0]


@pytest.fixture(scope="session")
def inputs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-inputs")


@pytest.fixture(scope="session")
def photo_png(inputs_dir: Path) -> Path:
    """A natural colour photograph (scikit-image's astronaut) as a PNG: not a radiograph."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the natural photo")
    path = inputs_dir / "holiday-photo.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    return path


@pytest.fixture(scope="session")
def ct_dicom(pydicom_data_file: Callable[[str], Path], inputs_dir: Path) -> Path:
    """pydicom's CT_small.dcm (a CT slice: not a radiograph), under a name a user might give it."""
    path = inputs_dir / "CT_small.dcm"
    shutil.copyfile(pydicom_data_file("CT_small.dcm"), path)
    return path


def _cr_dicom(pixels: np.ndarray, view: str) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    cr_storage = UID("1.2.840.10008.5.1.4.1.1.1")  # CR Image Storage
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = cr_storage
    ds.SOPClassUID = cr_storage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", view
    ds.PatientName, ds.PatientID = "Test^Web", "WEB-0001"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def chest_dicom(chest: Chest, inputs_dir: Path, predictor: Predictor) -> Path:
    """The accepted Kermany radiograph's pixels in a CR DICOM (frontal, PA): the page must show it,
    rendered to PNG by the service."""
    with Image.open(chest.path) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    path = inputs_dir / "chest-pa.dcm"
    path.write_bytes(_cr_dicom(pixels, "PA"))
    try:
        predictor.predict(path, use_cache=False)
    except CXRError as exc:
        pytest.fail(f"the served model refuses the DICOM copy of an image it reads: {exc}")
    return path


@pytest.fixture(scope="session")
def lateral_dicom(chest: Chest, inputs_dir: Path) -> Path:
    """The same pixels labelled a lateral view: refused before the model runs, whatever the model."""
    with Image.open(chest.path) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    path = inputs_dir / "chest-lateral.dcm"
    path.write_bytes(_cr_dicom(pixels, "LL"))
    return path


# ---- the browser ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip(
            f"{CHROMIUM} is absent: run .ci/browser.sh (installs Debian's chromium) to run the browser tests"
        )
    pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=LAUNCH_ARGS, headless=True)
        yield browser
        browser.close()


@dataclass
class Shots:
    """Full-page screenshots into test-artifacts/web/ (gitignored), named by step."""

    directory: Path
    taken: list[Path] = field(default_factory=list)

    def __call__(self, page: Any, name: str, full_page: bool = True) -> Path:
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        return path


@pytest.fixture(scope="session")
def shots() -> Shots:
    """The screenshots (and server logs) of this run only: an earlier run's are removed first."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("*.log")]:
        old.unlink()
    return Shots(ARTIFACTS)


@dataclass
class PageProblems:
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def new_page(browser: Any, server: Server, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Open a fresh browser context (nothing shared: no storage, no credential) on the page.

    After the test: no uncaught script error, no failed request for the page's own files, and a
    screenshot of every open page if the test failed.
    """
    contexts: list[Any] = []
    problems = PageProblems()

    def open_page(viewport: dict[str, int] | None = None, on: Server | None = None, **options: Any) -> Any:
        context = browser.new_context(
            viewport=viewport or DESKTOP,
            accept_downloads=True,
            locale="en-GB",
            timezone_id="Europe/London",
            **options,
        )
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.errors.append(f"script error: {exc}"))
        page.on(
            "requestfailed",
            lambda req: (
                problems.errors.append(f"request failed: {req.url} {req.failure}")
                if not req.url.startswith(("blob:", "data:"))
                else None
            ),
        )
        page.on(
            "response",
            lambda res: (
                problems.errors.append(f"{res.status} for {res.url}")
                if res.status >= 400 and "/api/" not in res.url
                else None
            ),
        )
        page.goto((on or server).url + "/")
        return page

    yield open_page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for index, context in enumerate(contexts):
            for number, page in enumerate(context.pages):
                page.screenshot(
                    path=str(ARTIFACTS / f"FAILED-{request.node.name}-{index}-{number}.png"), full_page=True
                )
    for context in contexts:
        context.close()
    assert not problems.errors, "\n".join(problems.errors)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
