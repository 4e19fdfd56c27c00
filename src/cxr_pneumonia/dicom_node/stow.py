"""STOW-RS of result files to a DICOMweb server (dicomweb-client): the outbox's other delivery."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ..store.outbox import Deliver, Delivery

log = logging.getLogger(__name__)

FAILED_SOP_SEQUENCE = 0x00081198
FAILURE_REASON = 0x00081197


def stow_files(url: str, timeout: float) -> Deliver:
    """The delivery function for ``url`` (a DICOMweb base URL, e.g. http://pacs/dicom-web)."""
    # One body per batch, not chunked; no retries of its own: the outbox backs off and retries.
    client = DICOMwebClient(url=url, timeout=timeout, chunk_size=1 << 30)
    client.set_http_retry_params(retry=False)

    def deliver(paths: Sequence[Path]) -> list[Delivery]:
        datasets: dict[Path, Dataset] = {}
        results: dict[Path, Delivery] = {}
        for path in paths:
            try:
                datasets[path] = dcmread(path)
            except (InvalidDicomError, OSError) as exc:
                results[path] = Delivery(path, f"unreadable result file: {exc}")
        if datasets:
            results.update(_store(client, datasets))
        return [results[path] for path in paths]

    return deliver


def _store(client: DICOMwebClient, datasets: dict[Path, Dataset]) -> dict[Path, Delivery]:
    try:
        response = client.store_instances(list(datasets.values()))
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status >= 500 or status in (401, 403, 404, 408, 429) or status == 0:
            return {p: Delivery(p, f"HTTP {status}", link_failed=True) for p in datasets}
        return {p: Delivery(p, f"STOW-RS refused: HTTP {status}") for p in datasets}
    except requests.RequestException as exc:
        return {p: Delivery(p, f"{type(exc).__name__}: {exc}", link_failed=True) for p in datasets}
    failed: dict[str, str] = {}
    if response is not None and FAILED_SOP_SEQUENCE in response:
        for item in response[FAILED_SOP_SEQUENCE].value:
            reason = item.get(FAILURE_REASON)
            failed[str(item.ReferencedSOPInstanceUID)] = (
                f"failure reason 0x{int(reason.value):04X}" if reason else "failed"
            )
    return {p: Delivery(p, failed.get(str(ds.SOPInstanceUID))) for p, ds in datasets.items()}
