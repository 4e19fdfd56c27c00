"""C-STORE of result files to the destination: one association for a batch of files."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pynetdicom import AE

from ..store.outbox import Delivery
from .options import Destination
from .syntaxes import UNCOMPRESSED, VERIFICATION

log = logging.getLogger(__name__)

# Statuses a Storage SCP returns for a stored instance (PS3.4 B.2.3): success, and the warnings
# that still mean "stored" (coercion of data elements, elements discarded, data set does not match).
STORED = {0x0000, 0xB000, 0xB006, 0xB007}


def store_files(
    paths: Sequence[Path],
    destination: Destination,
    calling_ae: str,
    *,
    timeout: float,
    tls: ssl.SSLContext | None = None,
) -> list[Delivery]:
    """Send ``paths`` to ``destination`` (over TLS when ``tls`` is given); one Delivery per path, in
    order. Never raises for network or peer trouble: the caller decides about retries from the errors."""
    headers: dict[Path, tuple[str, str]] = {}
    results: dict[Path, Delivery] = {}
    for path in paths:
        try:
            meta = dcmread(path, stop_before_pixels=True)
            headers[path] = (str(meta.SOPClassUID), str(meta.file_meta.TransferSyntaxUID))
        except (InvalidDicomError, OSError, AttributeError) as exc:
            results[path] = Delivery(path, f"unreadable result file: {exc}")
    if headers:
        results.update(_send(headers, destination, calling_ae, timeout, tls))
    return [results[path] for path in paths]


def _send(
    headers: dict[Path, tuple[str, str]],
    destination: Destination,
    calling_ae: str,
    timeout: float,
    tls: ssl.SSLContext | None,
) -> dict[Path, Delivery]:
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.connection_timeout = timeout
    # Verification too: a destination that accepts none of the batch's storage classes then still
    # accepts the association, and each result is refused on its own (and parked in time), instead of
    # the whole destination looking down forever.
    ae.add_requested_context(VERIFICATION)
    for sop_class in sorted({sop for sop, _ in headers.values()}):
        syntaxes = sorted({ts for sop, ts in headers.values() if sop == sop_class} | set(UNCOMPRESSED))
        ae.add_requested_context(sop_class, syntaxes)
    try:
        assoc = ae.associate(
            destination.host,
            destination.port,
            ae_title=destination.ae_title,
            tls_args=(tls, destination.host)
            if tls is not None
            else None,  # the name its certificate must carry
        )
    except (OSError, RuntimeError, ValueError) as exc:  # unresolvable host name and the like
        return {
            path: Delivery(path, f"cannot reach {destination}: {exc}", link_failed=True) for path in headers
        }
    if not assoc.is_established:
        reason = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "unreachable"
        error = f"association with {destination} {reason}"
        return {path: Delivery(path, error, link_failed=True) for path in headers}
    results: dict[Path, Delivery] = {}
    try:
        for path in headers:
            if not assoc.is_established:
                results[path] = Delivery(path, "association lost", link_failed=True)
                continue
            try:
                status = assoc.send_c_store(path)
            except (ValueError, RuntimeError, OSError) as exc:  # no accepted context, encoding trouble
                results[path] = Delivery(path, f"not sent: {exc}")
                continue
            code = int(status.get("Status", -1)) if status else -1
            if code in STORED:
                results[path] = Delivery(path, None)
            else:  # no status at all means the link went (timeout, abort): not the instance's fault
                results[path] = Delivery(path, _describe(code), link_failed=code < 0)
    finally:
        if assoc.is_established:
            assoc.release()
    return results


def _describe(code: int) -> str:
    if code < 0:
        return "no response from the destination (timeout or abort)"
    return f"destination answered status 0x{code:04X}"
