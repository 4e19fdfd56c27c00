"""End to end through the real command: `cxr dicom-node` as a subprocess, dcmtk storescu sending,
Orthanc receiving the results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ports import free_port

from .peers import NODE_AE, SENDER_AE, Orthanc, echoscu, storescu
from .test_node import check_results

pytestmark = pytest.mark.dcmtk


def cxr_command() -> list[str]:
    script = Path(sys.executable).with_name("cxr")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cxr_pneumonia.cli"]


def start_node(tmp_path: Path, model: Path, port: int, destination: str) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CXR_")}
    env.update(
        {"CXR_DATA_DIR": str(tmp_path / "data"), "CXR_MODEL_PATH": str(model), "CXR_LOG_LEVEL": "INFO"}
    )
    command = [*cxr_command(), "dicom-node", "--ae-title", NODE_AE, "--port", str(port), "--bind", "127.0.0.1",
               "--destination", destination, "--accept-ae", SENDER_AE, "--retry-initial", "0.5", "--retry-max", "2"]  # fmt: skip
    log = open(tmp_path / "node.log", "w")  # noqa: SIM115 - closed with the process below
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def wait_listening(node: subprocess.Popen[str], dcmtk: dict[str, str], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if node.poll() is not None:
            pytest.fail(f"cxr dicom-node exited with {node.returncode}:\n{log.read_text()}")
        if echoscu(dcmtk, port).returncode == 0:  # C-ECHO answered: listening
            return
        time.sleep(0.3)
    pytest.fail(f"cxr dicom-node is not answering C-ECHO:\n{log.read_text()}")


def wait_drained(spool: Path, log: Path, received: int, timeout: float = 300) -> None:
    """Until every received instance is analysed or refused and the outbox is empty."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        done = text.count(" analysed: ") + text.count(" refused: ")
        queued = list((spool / "incoming").glob("*.dcm")) + list((spool / "outbox").glob("*.dcm"))
        if text.count(" received ") >= received and done >= received and not queued:
            return
        time.sleep(0.5)
    pytest.fail(f"the node did not finish in {timeout} s:\n{log.read_text()[-4000:]}")


def test_cxr_dicom_node_command_end_to_end(
    tmp_path: Path,
    bundled_model_path: Path,
    orthanc: Orthanc,
    dcmtk: dict[str, str],
    chest_files: list[Path],
    kermany_capture: Path,
    refused_files: dict[Path, str],
    predictor: Any,
) -> None:
    port = free_port()
    node = start_node(tmp_path, bundled_model_path, port, orthanc.destination)
    log = tmp_path / "node.log"
    try:
        wait_listening(node, dcmtk, port, log)
        accepted = [kermany_capture, *chest_files]
        sent = storescu(dcmtk, port, [*accepted, *refused_files])
        assert sent.returncode == 0, sent.stderr
        wait_drained(tmp_path / "data" / "dicom", log, received=len(accepted) + len(refused_files))
        for path in accepted:
            check_results(orthanc, path, predictor)
        assert len(orthanc.instances()) == 2 * len(accepted)  # nothing for the refused ones
    finally:
        node.send_signal(signal.SIGTERM)
        try:
            code = node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
            raise
    assert code == 0, log.read_text()
    text = log.read_text()
    for reason in set(refused_files.values()):
        assert f"refused: {reason}" in text
    # Nothing that names the patient reaches the log.
    for path in [*accepted, *refused_files]:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for value in (str(ds.get("PatientName", "")), str(ds.get("PatientID", ""))):
            if value:
                assert value not in text


def test_a_malformed_destination_stops_the_command_with_a_clear_error(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CXR_")}
    env["CXR_DATA_DIR"] = str(tmp_path)
    result = subprocess.run([*cxr_command(), "dicom-node", "--destination", "PACS-without-port"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 2
    assert "dicom_config" in result.stderr and "AE@HOST:PORT" in result.stderr


def test_tls_options_reach_the_command_and_a_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CXR_")}
    env["CXR_DATA_DIR"] = str(tmp_path)
    cert = tmp_path / "node.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    result = subprocess.run([*cxr_command(), "dicom-node", "--tls", "--tls-cert", str(cert)], env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 2
    assert "dicom_tls_config" in result.stderr and "private key" in result.stderr
    assert "Traceback" not in result.stderr
