"""Chaos, as a test: `kill -9` of `cxr dicom-node` while its results wait in the outbox for a PACS that
is down; restarted, with the PACS back, every result arrives exactly once (counted at Orthanc as each
C-STORE comes in, duplicates included: Orthanc itself would silently keep one copy of a resend)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from ports import free_port

from .peers import Orthanc, storescu
from .test_command import start_node, wait_listening

pytestmark = pytest.mark.dcmtk

COUNTING_FILTER = """
function ReceivedInstanceFilter(dicom, origin, info)
  local log = io.open("{path}", "a")
  log:write(dicom.SOPInstanceUID, "\\n")
  log:close()
  return true
end
"""


def _wait(probe: Any, what: str, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")


def test_kill_9_with_results_in_the_outbox_and_the_pacs_down_delivers_each_once(
    tmp_path: Path,
    bundled_model_path: Path,
    orthanc_factory: Any,
    dcmtk: dict[str, str],
    chest_files: list[Path],
    kermany_capture: Path,
) -> None:
    arrivals = tmp_path / "arrivals.txt"
    script = tmp_path / "count.lua"
    script.write_text(COUNTING_FILTER.format(path=arrivals))
    pacs: Orthanc = orthanc_factory(start=False, extra={"LuaScripts": [str(script)]})  # down
    outbox = tmp_path / "data" / "dicom" / "outbox"
    accepted = [kermany_capture, *chest_files]
    port = free_port()
    node = start_node(tmp_path, bundled_model_path, port, pacs.destination)
    log = tmp_path / "node.log"
    try:
        wait_listening(node, dcmtk, port, log)
        assert storescu(dcmtk, port, accepted).returncode == 0
        _wait(lambda: log.read_text().count(" analysed: ") >= len(accepted), "the analyses", log)
        _wait(lambda: len(list(outbox.glob("*.dcm"))) == 2 * len(accepted), "the results in the outbox", log)
        node.send_signal(signal.SIGKILL)
        node.wait(10)
        node = start_node(tmp_path, bundled_model_path, port, pacs.destination)  # same data dir
        wait_listening(node, dcmtk, port, log)
        pacs.start()
        _wait(lambda: not list(outbox.glob("*.dcm")), "the outbox to empty", log)
        time.sleep(3)  # a resend, if there were one, would arrive now
    finally:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
    counts = Counter(arrivals.read_text().split())
    assert len(counts) == 2 * len(accepted), counts  # an SR and a Secondary Capture each
    assert set(counts.values()) == {1}, counts  # exactly once
    assert len(pacs.instances()) == 2 * len(accepted)
