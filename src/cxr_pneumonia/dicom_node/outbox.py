"""The DICOM node's outbox (SR and Secondary Capture files) and its sender: the shared persistent
outbox (store/outbox.py) with DIMSE C-STORE, or STOW-RS to a DICOMweb server, as the delivery."""

from __future__ import annotations

import io
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path

from pydicom.dataset import Dataset

from ..store.outbox import Backoff, Delivery, FileOutbox, OutboxSender, RetryPolicy
from .options import Destination
from .scu import store_files

__all__ = ["Backoff", "Delivery", "Outbox", "RetryPolicy", "Sender"]


class Outbox(FileOutbox):
    def __init__(self, root: Path) -> None:
        super().__init__(root, suffix=".dcm")

    def put(self, result: Dataset) -> Path:
        """Queue a result, named by its SOP Instance UID."""
        buffer = io.BytesIO()
        result.save_as(buffer, enforce_file_format=True)
        return self.put_bytes(str(result.SOPInstanceUID), buffer.getvalue())


class Sender(OutboxSender):
    """Sends the outbox to a DICOM destination (AE@host:port) with C-STORE."""

    def __init__(
        self,
        outbox: Outbox,
        destination: Destination,
        calling_ae: str,
        retry: RetryPolicy,
        *,
        timeout: float,
        on_delivered: Callable[[Path], None] | None = None,
        on_parked: Callable[[Path, str, int], None] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        def deliver(batch: Sequence[Path]) -> list[Delivery]:
            return store_files(batch, destination, calling_ae, timeout=timeout, tls=tls)

        super().__init__(outbox, deliver, retry, destination=destination, name="dicom-sender",
                         on_delivered=on_delivered, on_parked=on_parked)  # fmt: skip
