"""STOW-RS intake (PS3.18 10.5): each instance of a request checked and put in the DICOM node's spool,
where the node analyses it exactly as a C-STORE (quality gate, Predictor, SR + Secondary Capture back
to the PACS, prediction on record); the answer names every instance stored or failed (DICOM JSON).

Like a C-STORE, a STOW-RS is answered once the instances are durably on disk, not once analysed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pynetdicom.dsutils import encode_file_meta

from ..errors import InputError
from ..imaging.dicom import read_dataset
from ..imaging.limits import Limits
from ..store.spool import Spool

SENDER_AE = "DICOMWEB"  # the calling "AE" the node records for instances that came by STOW-RS
# Failure reasons (PS3.18 table 10.5.3-2 / PS3.4 annex B): what a STOW client can act on.
OUT_OF_RESOURCES = 0xA700  # here: the instance exceeds CXR_MAX_BYTES
CANNOT_UNDERSTAND = 0xC000  # not a readable DICOM Part 10 instance with study and instance UIDs


@dataclass(frozen=True)
class StowItem:
    sop_class_uid: str | None
    sop_instance_uid: str | None
    failure: int | None = None  # None: stored
    detail: str | None = None
    job: str | None = None  # the node's job id (the spool file), for the audit trail
    sha256: str | None = None


def _meta_end(data: bytes) -> int | None:
    """Where the file meta group of a Part 10 file ends (its first element gives its length)."""
    if data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00" or data[136:138] != b"UL":
        return None
    return 144 + int.from_bytes(data[140:144], "little")


def store_instance(
    part: bytes, media_type: str, spool: Spool, limits: Limits, client: str | None
) -> StowItem:
    """Check one part and spool it. Never raises for what the sender sent."""
    sha256 = hashlib.sha256(part).hexdigest()
    if media_type.split(";")[0].strip().lower() != "application/dicom":
        return StowItem(
            None,
            None,
            CANNOT_UNDERSTAND,
            f"part of type {media_type or 'none'}; expected application/dicom",
            sha256=sha256,
        )
    if len(part) > limits.max_bytes:
        return StowItem(
            None,
            None,
            OUT_OF_RESOURCES,
            f"{len(part)} bytes; at most {limits.max_bytes} per instance",
            sha256=sha256,
        )
    try:
        header = read_dataset(part, limits, stop_before_pixels=True)
    except InputError as exc:
        return StowItem(None, None, CANNOT_UNDERSTAND, exc.detail, sha256=sha256)
    sop_class = str(header.get("SOPClassUID", "")) or None
    sop_instance = str(header.get("SOPInstanceUID", "")) or None
    end = _meta_end(part)
    if end is None or "StudyInstanceUID" not in header or sop_instance is None or sop_class is None:
        return StowItem(sop_class, sop_instance, CANNOT_UNDERSTAND,
                        "not a DICOM Part 10 instance with SOP class, SOP instance and study UIDs", sha256=sha256)  # fmt: skip
    # The node reads who sent an instance from its file meta, as the SCP writes it for a C-STORE.
    meta = header.file_meta
    meta.SendingApplicationEntityTitle = SENDER_AE
    if client:
        meta.SendingPresentationAddress = f"http://[{client}]" if ":" in client else f"http://{client}"
    try:
        encoded_meta = encode_file_meta(meta)
    except Exception as exc:  # a hostile file meta pydicom read but cannot write back: the sender's fault
        return StowItem(
            sop_class,
            sop_instance,
            CANNOT_UNDERSTAND,
            f"unusable file meta ({type(exc).__name__})",
            sha256=sha256,
        )
    path = spool.put(b"".join((b"\x00" * 128, b"DICM", encoded_meta, part[end:])))
    return StowItem(sop_class, sop_instance, job=Spool.job_id(path), sha256=sha256)


def _uid(value: str | None) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def stow_response(items: list[StowItem]) -> tuple[int, dict[str, Any]]:
    """HTTP status and DICOM JSON body: 200 all stored, 202 some failed, 409 none stored."""
    stored = [i for i in items if i.failure is None]
    failed = [i for i in items if i.failure is not None]
    body: dict[str, Any] = {}
    if stored:
        body["00081199"] = {"vr": "SQ", "Value": [
            {"00081150": _uid(i.sop_class_uid), "00081155": _uid(i.sop_instance_uid)} for i in stored]}  # fmt: skip
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": [
            {"00081150": _uid(i.sop_class_uid), "00081155": _uid(i.sop_instance_uid),
             "00081197": {"vr": "US", "Value": [i.failure]}} for i in failed]}  # fmt: skip
    status = 200 if not failed else 202 if stored else 409
    return status, body
