"""The per-file claim that lets several processes share a spool or an outbox (store/fsio.claim): a file
another process holds is left alone, by the outbox sender and by the clean-up of partial writes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from cxr_pneumonia.store.fsio import PARTIAL_SUFFIX, claim, remove_stale_partials
from cxr_pneumonia.store.outbox import Delivery, FileOutbox, OutboxSender, RetryPolicy

HOLDER = """
import fcntl, sys
handle = open(sys.argv[1], "rb")
fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


@contextmanager
def held_elsewhere(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` held by another process until the block ends."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield
    finally:
        process.communicate(timeout=10)


def test_a_file_held_by_another_process_is_not_claimed_until_it_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "a.dcm"
    path.write_bytes(b"x")
    with held_elsewhere(path), claim(path) as mine:
        assert not mine
    with claim(path) as mine:
        assert mine


def test_a_file_gone_or_replaced_meanwhile_is_not_claimed(tmp_path: Path) -> None:
    with claim(tmp_path / "missing.dcm") as mine:
        assert not mine
    path = tmp_path / "b.dcm"
    path.write_bytes(b"x")
    with claim(path) as first:
        assert first
        with claim(path) as second:  # a second holder, even in this process, is refused
            assert not second


def test_the_clean_up_keeps_a_partial_another_process_is_writing(tmp_path: Path) -> None:
    writing, stale = tmp_path / f".a.dcm.1234{PARTIAL_SUFFIX}", tmp_path / f".b.dcm.5678{PARTIAL_SUFFIX}"
    writing.write_bytes(b"half")
    stale.write_bytes(b"half")
    with held_elsewhere(writing):
        assert remove_stale_partials(tmp_path) == 1
    assert writing.exists() and not stale.exists()


def test_the_sender_leaves_a_result_another_process_is_sending(tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path, suffix=".json")
    busy, free = outbox.put_bytes("busy", b"{}"), outbox.put_bytes("free", b"{}")
    sent: list[str] = []

    def deliver(batch: Sequence[Path]) -> list[Delivery]:
        sent.extend(path.name for path in batch)
        return [Delivery(path, None) for path in batch]

    sender = OutboxSender(outbox, deliver, RetryPolicy(), destination="test")
    with held_elsewhere(busy):
        sender.send_due()
    assert sent == [free.name]
    assert outbox.pending() == [busy]  # still there for whoever holds it (or for the next round)
    sender.send_due()
    assert sent == [free.name, busy.name] and outbox.pending() == []
