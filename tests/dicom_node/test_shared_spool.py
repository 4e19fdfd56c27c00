"""Two nodes on one spool and outbox directory: no instance analysed twice, no result sent twice.

The destination is dcmtk's storescp, which runs a command on every reception and so logs each one
(Orthanc stores a repeated instance once and could not show a duplicate).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from ports import free_port
from pydicom.uid import generate_uid

from .peers import find_binary, prediction_records, storescu

pytestmark = pytest.mark.dcmtk

RECEIVER_AE = "RECEIVER"
BACKLOG = 4  # instances already in the shared spool when both nodes start (both see all of them)
LIVE = 2  # instances sent to each node while both run


class Receiver:
    def __init__(self, port: int, log: Path, process: subprocess.Popen[bytes]) -> None:
        self.port, self.log, self.process = port, log, process

    @property
    def destination(self) -> str:
        return f"{RECEIVER_AE}@127.0.0.1:{self.port}"

    def receptions(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []


@pytest.fixture
def receiver(tmp_path: Path, dcmtk: dict[str, str]) -> Iterator[Receiver]:
    binary = find_binary("storescp")
    if binary is None:
        pytest.skip("dcmtk's storescp is not installed: run .ci/dicom.sh")
    port, out, log = free_port(), tmp_path / "received", tmp_path / "receptions.log"
    out.mkdir()
    # One line per reception (#f: the stored file's name, from its SOP Instance UID, so a duplicate
    # overwrites the file but adds a line).
    command = [binary, "-aet", RECEIVER_AE, "+xa", "-od", str(out), "-xcr", f"echo #f >> {log}", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    assert process.poll() is None, "storescp did not start"
    yield Receiver(port, log, process)
    process.terminate()
    process.wait(10)


def _copies(source: Path, directory: Path, count: int) -> list[Path]:
    """The same radiograph as distinct instances (new SOP Instance UIDs)."""
    directory.mkdir(exist_ok=True)
    paths = []
    for index in range(count):
        ds = pydicom.dcmread(source)
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = directory / f"instance-{index}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_two_nodes_on_one_spool_analyse_and_send_each_instance_once(
    node_factory: Any,
    receiver: Receiver,
    dcmtk: dict[str, str],
    kermany_capture: Path,
    store: Any,
    tmp_path: Path,
) -> None:
    from cxr_pneumonia.store.spool import Spool

    instances = _copies(kermany_capture, tmp_path / "instances", BACKLOG + 2 * LIVE)
    backlog, live = instances[:BACKLOG], instances[BACKLOG:]
    spool = Spool(tmp_path / "spool")  # the directory node_factory gives every node
    for path in backlog:  # acknowledged by a node that then died: both survivors find them at start
        spool.put(path.read_bytes())
    first = node_factory(destination=receiver.destination)
    second = node_factory(destination=receiver.destination)
    assert first.spool.root == second.spool.root
    for node, files in ((first, live[:LIVE]), (second, live[LIVE:])):
        sent = storescu(dcmtk, node.address[1], files)
        assert sent.returncode == 0, sent.stderr
    for node in (first, second):
        assert node.wait_until_idle(300)
    deadline = time.monotonic() + 30
    while len(receiver.receptions()) < 2 * len(instances) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.5)  # a round of both senders (and the idle workers' rescan) after the last delivery

    records = prediction_records(store)
    assert len(records) == len(instances), "an instance was analysed twice (or not at all)"
    receptions = receiver.receptions()
    assert len(receptions) == 2 * len(instances), receptions  # one SR and one capture each
    assert len(set(receptions)) == len(receptions), "a result was sent twice"
    kinds = sorted(name.split(".")[0] for name in receptions)  # storescp's prefixes: SC, SRc (comprehensive)
    assert kinds == ["SC"] * len(instances) + ["SRc"] * len(instances), kinds
    assert not spool.pending() and not list((tmp_path / "spool" / "outbox").glob("*.dcm"))
