"""The persistent outbox and its sender, against a real Orthanc (running, stopped, refusing)."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from cxr_pneumonia.dicom_node.options import Destination, RetryPolicy
from cxr_pneumonia.dicom_node.outbox import Backoff, Outbox, Sender
from cxr_pneumonia.dicom_node.provenance import Provenance
from cxr_pneumonia.dicom_node.sr import finding_report, refusal_report
from cxr_pneumonia.store.spool import Spool

from .peers import NODE_AE, Orthanc


@pytest.fixture(scope="module")
def reports(kermany_capture: Path, predictor: Any) -> list[Dataset]:
    """Two real result objects (an SR for the capture, a refusal SR for the same study)."""
    source = pydicom.dcmread(kermany_capture)
    prediction = predictor.predict(kermany_capture)
    provenance = Provenance(prediction.model)
    return [
        finding_report(source, prediction.input_sha256, prediction, provenance),
        refusal_report(source, "a" * 64, "lateral_view", "a lateral view", provenance),
    ]


def sender_for(outbox: Outbox, destination: str, retry: RetryPolicy, **callbacks: Any) -> Sender:
    return Sender(outbox, Destination.parse(destination), NODE_AE, retry, timeout=10, **callbacks)


def test_outbox_is_idempotent_and_ordered(tmp_path: Path, reports: list[Dataset]) -> None:
    outbox = Outbox(tmp_path)
    first = outbox.put(reports[0])
    time.sleep(0.01)
    second = outbox.put(reports[1])
    time.sleep(0.01)
    assert outbox.put(reports[0]) == first  # queued again after a crash: the same file, not a duplicate
    assert outbox.pending() == [second, first]  # oldest write first
    assert pydicom.dcmread(first).SOPInstanceUID == reports[0].SOPInstanceUID
    # A write interrupted by a crash leaves only a hidden partial file, removed at the next start.
    (outbox.pending_dir / ".half-written.dcm.abcd1234.part").write_bytes(b"DICM")
    assert len(Outbox(tmp_path).pending()) == 2
    assert not list(outbox.pending_dir.glob("*.part"))


def test_backoff_survives_a_restart_and_goes_with_the_result(tmp_path: Path, reports: list[Dataset]) -> None:
    outbox = Outbox(tmp_path)
    queued = outbox.put(reports[0])
    assert outbox.load_backoff(queued) is None  # never tried
    outbox.save_backoff(queued, Backoff(3, time.monotonic() + 60, "0xA700 out of resources"))
    restored = Outbox(tmp_path).load_backoff(queued)
    assert (
        restored is not None and restored.attempts == 3 and restored.last_error == "0xA700 out of resources"
    )
    assert 59 <= restored.due - time.monotonic() <= 60
    assert outbox.pending() == [queued]  # the record is not mistaken for a result
    (outbox.pending_dir / f"{queued.name}.retry.json").write_text("{not json")
    assert outbox.load_backoff(queued) is None  # unreadable: retried as new, never a crash
    outbox.save_backoff(queued, Backoff(1, time.monotonic() - 5, "refused"))
    assert outbox.load_backoff(queued).due <= time.monotonic()  # type: ignore[union-attr]  # overdue: due now
    outbox.delivered(queued)
    assert not list(outbox.pending_dir.iterdir())


@pytest.mark.dcmtk
def test_sender_delivers_and_empties_the_outbox(
    tmp_path: Path, reports: list[Dataset], orthanc: Orthanc
) -> None:
    outbox = Outbox(tmp_path)
    for report in reports:
        outbox.put(report)
    delivered: list[Path] = []
    sender = sender_for(outbox, orthanc.destination, RetryPolicy(1, 2), on_delivered=delivered.append)
    attempts = sender.send_due()
    assert [a.ok for a in attempts] == [True, True]
    assert outbox.pending() == []
    assert len(delivered) == 2
    stored = {orthanc.tags(i)["SOPInstanceUID"] for i in orthanc.instances()}
    assert stored == {r.SOPInstanceUID for r in reports}


@pytest.mark.dcmtk
def test_sender_backs_off_while_the_destination_is_down_and_never_parks_for_it(
    tmp_path: Path, reports: list[Dataset], orthanc_factory: Any
) -> None:
    pacs = orthanc_factory(start=False)
    outbox = Outbox(tmp_path)
    outbox.put(reports[0])
    sender = sender_for(outbox, pacs.destination, RetryPolicy(0.5, 4, max_attempts=1))
    for expected in (0.5, 1.0, 2.0, 4.0, 4.0):  # doubling, capped
        before = time.monotonic()
        attempts = sender.send_due(now=sender.next_due())  # as if the back-off had elapsed
        after = time.monotonic()
        assert len(attempts) == 1 and attempts[0].link_failed
        next_due = sender.next_due()
        assert next_due is not None and before + expected <= next_due <= after + expected
        assert sender.send_due() == [] or time.monotonic() >= next_due  # not due yet: no attempt
    assert len(outbox.pending()) == 1 and not outbox.failed_dir.exists()  # waiting, not given up
    pacs.start()
    assert [a.ok for a in sender.send_due(now=sender.next_due())] == [True]
    assert outbox.pending() == [] and len(pacs.instances()) == 1


@pytest.mark.dcmtk
def test_a_result_the_destination_refuses_is_parked_after_max_attempts(
    tmp_path: Path, reports: list[Dataset], orthanc: Orthanc
) -> None:
    outbox = Outbox(tmp_path)
    good = outbox.put(reports[0])
    odd = reports[1].copy()
    odd.SOPClassUID = "1.2.826.0.1.3680043.9.7433.99.1"  # a storage class no PACS knows
    odd.SOPInstanceUID = pydicom.uid.generate_uid()
    buffer = io.BytesIO()
    odd.save_as(buffer, enforce_file_format=True)
    refused = outbox.pending_dir / f"{odd.SOPInstanceUID}.dcm"
    refused.write_bytes(buffer.getvalue())
    parked: list[tuple[Path, str, int]] = []
    sender = sender_for(outbox, orthanc.destination, RetryPolicy(0.2, 0.2, max_attempts=2),
                        on_parked=lambda p, e, n: parked.append((p, e, n)))  # fmt: skip
    first = {a.path: a for a in sender.send_due()}
    assert first[good].ok and not first[refused].ok and not first[refused].link_failed
    assert outbox.pending() == [refused]
    # The node restarts: a new sender still knows the result failed once and when to retry it.
    due_before_restart = sender.next_due()
    sender = sender_for(Outbox(tmp_path), orthanc.destination, RetryPolicy(0.2, 0.2, max_attempts=2),
                        on_parked=lambda p, e, n: parked.append((p, e, n)))  # fmt: skip
    assert sender.send_due() == []  # not due yet, even though this sender never tried it
    assert due_before_restart is not None and sender.next_due() == pytest.approx(due_before_restart, abs=0.05)
    second = sender.send_due(now=sender.next_due())
    assert [a.ok for a in second] == [False]
    assert outbox.pending() == []
    assert [(p.name, n) for p, _, n in parked] == [(refused.name, 2)]
    assert (outbox.failed_dir / refused.name).is_file()  # set aside, not deleted
    assert not list(outbox.pending_dir.iterdir())  # its retry record went with it
    assert len(orthanc.instances()) == 1


def test_spool_keeps_received_instances_in_arrival_order(tmp_path: Path, kermany_capture: Path) -> None:
    spool = Spool(tmp_path)
    data = kermany_capture.read_bytes()
    first, second = spool.put(data), spool.put(data)
    assert spool.pending() == [first, second]
    assert first.read_bytes() == data
    spool.finish(first, keep=False)
    spool.finish(second, keep=True)
    assert spool.pending() == [] and not first.exists()
    assert (spool.kept / second.name).read_bytes() == data
    parked = spool.park(spool.put(data))
    assert parked.parent == spool.failed and spool.pending() == []
