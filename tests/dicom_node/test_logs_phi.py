"""No patient identifier in any log line: DICOM files whose PatientName, PatientID and file names are
known strings go through the REST API (`cxr serve`) and the DICOM node (`cxr dicom-node`), with the
logs in JSON and in text, at INFO; none of the strings may appear. The JSON lines carry the fields an
operator ships (time, level, logger, request id, route, status, duration, model version)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pydicom
import pytest
from bundled_model import BUNDLED_VERSION
from ports import free_port
from service.conftest import API, env_without_cxr  # the service tests' helpers
from service.test_serve import serving

from .peers import SENDER_AE, echoscu, storescu
from .test_command import cxr_command

pytestmark = pytest.mark.slow
PATIENT_NAME = "Quixote^Dulcinea"
PATIENT_ID = "MRN-PHI-7731"
FILE_NAME = "Quixote-MRN-PHI-7731-chest.dcm"
SECRETS = ("Quixote", "Dulcinea", PATIENT_ID, "PHI-7731", FILE_NAME)


@pytest.fixture(scope="module")
def identified(shared_dicom: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real sample radiograph, carrying identifiers we can look for."""
    ds = pydicom.dcmread(shared_dicom / "cr-chest-monochrome2-jpeg-baseline.dcm")
    ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
    ds.OtherPatientIDs = PATIENT_ID
    path = tmp_path_factory.mktemp("phi") / FILE_NAME
    ds.save_as(path)
    return path


def _assert_clean(text: str, fmt: str) -> None:
    assert text.strip(), "nothing was logged"
    for secret in SECRETS:
        assert secret.lower() not in text.lower(), f"{secret!r} is in the {fmt} log"


def _json_lines(text: str) -> list[dict[str, object]]:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_rest_api_logs_no_patient_identifier(
    fmt: str, identified: Path, tmp_path: Path, bundled_model_path: Path
) -> None:
    env = {
        **env_without_cxr(),
        "CXR_DATA_DIR": str(tmp_path / "data"),
        "CXR_MODEL_PATH": str(bundled_model_path),
    }
    made = subprocess.run(
        [*cxr_command(), "keys", "create", "phi-test", "--role", "clinician"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    key = {"X-API-Key": made.stdout.split("api key (shown once): ")[1].strip()}
    data = identified.read_bytes()
    with serving(
        tmp_path, bundled_model_path, settings={"CXR_LOG_FORMAT": fmt, "CXR_LOG_LEVEL": "INFO"}
    ) as server:
        one = httpx.post(
            f"{server.url}{API}/predict", files={"file": (FILE_NAME, data)}, headers=key, timeout=120
        )
        assert one.status_code == 200, one.text
        many = [("files", (FILE_NAME, data)), ("files", (f"copy-{FILE_NAME}", data[:2000]))]  # one truncated
        assert (
            httpx.post(f"{server.url}{API}/predict/batch", files=many, headers=key, timeout=120).status_code
            == 200
        )
        bad = httpx.post(
            f"{server.url}{API}/predict", files={"file": (FILE_NAME, data[:3000])}, headers=key, timeout=60
        )
        assert bad.status_code in (400, 422)
        time.sleep(0.5)  # the access line is written as the response ends
    text = (tmp_path / "serve.stderr").read_text()
    _assert_clean(text, fmt)
    if fmt == "json":
        access = [line for line in _json_lines(text) if line.get("route") == f"{API}/predict"]
        assert access, text[-2000:]
        first = access[0]
        assert {
            "time",
            "level",
            "logger",
            "request_id",
            "route",
            "status",
            "duration_ms",
            "model_version",
        } <= set(first)
        assert first["request_id"] == one.headers["x-request-id"] and first["status"] == 200
        assert first["model_version"] == BUNDLED_VERSION


@pytest.mark.dcmtk
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_dicom_node_logs_no_patient_identifier(
    fmt: str, identified: Path, tmp_path: Path, bundled_model_path: Path, dcmtk: dict[str, str]
) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CXR_")}
    env.update({"CXR_DATA_DIR": str(tmp_path / "data"), "CXR_MODEL_PATH": str(bundled_model_path),
                "CXR_LOG_LEVEL": "INFO", "CXR_LOG_FORMAT": fmt, "CXR_DICOM_REFUSAL_SR": "true"})  # fmt: skip
    log_path = tmp_path / "node.log"
    with log_path.open("w") as log:
        node = subprocess.Popen(
            [*cxr_command(), "dicom-node", "--port", str(port), "--bind", "127.0.0.1", "--accept-ae", SENDER_AE],
            env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while echoscu(dcmtk, port).returncode != 0:
            assert node.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
        refused = tmp_path / f"refused-{FILE_NAME}"
        ds = pydicom.dcmread(identified)
        ds.BodyPartExamined, ds.Modality = "HEAD", "CT"  # refused by the gate: its log line too
        ds.save_as(refused)
        assert storescu(dcmtk, port, [identified, refused]).returncode == 0
        while log_path.read_text().count(" analysed: ") + log_path.read_text().count(" refused: ") < 2:
            assert node.poll() is None and time.monotonic() < deadline + 120, log_path.read_text()
            time.sleep(0.5)
    finally:
        node.send_signal(signal.SIGINT)
        node.wait(30)
    text = log_path.read_text()
    _assert_clean(text, fmt)
    if fmt == "json":
        analysed = [line for line in _json_lines(text) if " analysed: " in str(line["message"])]
        assert analysed and analysed[0]["request_id"]  # the job id names the instance, not the patient
