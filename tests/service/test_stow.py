"""POST /dicomweb/studies (STOW-RS intake): per-instance status, its own limits, the same credentials.
(The round trip through the DICOM node and a real Orthanc is tests/dicom_node/test_dicomweb.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cxr_pneumonia.errors import InputError
from cxr_pneumonia.service.multipart import split_parts

from .conftest import Service, assert_error_body


def multipart(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    chunks = [
        f"--{boundary}\r\nContent-Type: {media}\r\n\r\n".encode() + data + b"\r\n" for media, data in parts
    ]
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def stow(service: Service, parts: list[tuple[str, bytes]], headers: dict[str, str] | None = None) -> Any:
    body, content_type = multipart(parts)
    return service.client.post("/dicomweb/studies", content=body,
                               headers={"Content-Type": content_type, **(service.key("integration") if headers is None else headers)})  # fmt: skip


def uids(sequence: dict[str, Any] | None) -> list[str]:
    return [
        item["00081155"]["Value"][0]
        for item in (sequence or {}).get("Value", [])
        if "Value" in item["00081155"]
    ]


def test_instances_are_spooled_for_the_node_and_each_gets_a_status(
    service: Service, shared_dicom: Path, chest_jpeg: bytes
) -> None:
    files = sorted(shared_dicom.glob("*.dcm"))
    response = stow(service, [("application/dicom", f.read_bytes()) for f in files]
                    + [("application/dicom", b"not dicom"), ("image/jpeg", chest_jpeg)])  # fmt: skip
    assert response.status_code == 202, response.text  # some stored, some failed
    assert response.headers["content-type"].startswith("application/dicom+json")
    body = response.json()
    import pydicom

    expected = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
    assert uids(body["00081199"]) == expected
    failed = body["00081198"]["Value"]
    assert [item["00081197"]["Value"][0] for item in failed] == [0xC000, 0xC000]
    spooled = sorted((service.settings.data_dir / "dicom" / "incoming").glob("*.dcm"))
    assert len(spooled) == len(files)
    stamped = pydicom.dcmread(spooled[0], stop_before_pixels=True)
    assert stamped.file_meta.SendingApplicationEntityTitle == "DICOMWEB"
    assert str(stamped.SOPInstanceUID) == expected[0]  # the dataset itself is untouched
    assert pydicom.dcmread(spooled[0]).pixel_array.shape == pydicom.dcmread(files[0]).pixel_array.shape


def test_stow_has_its_own_limits_and_the_same_credentials(
    make_service: Callable[..., Service], shared_dicom: Path
) -> None:
    data = sorted(shared_dicom.glob("*.dcm"))[0].read_bytes()
    service = make_service(max_bytes=len(data) - 1, dicomweb_max_request_bytes=3 * len(data))
    too_big = stow(service, [("application/dicom", data)])
    assert too_big.status_code == 409  # nothing stored
    assert too_big.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xA700]
    assert_error_body(stow(service, [("application/dicom", data)] * 4), 413, "too_large")  # the whole request
    assert_error_body(stow(service, [("application/dicom", data)], headers={}), 401)
    assert_error_body(stow(service, [("application/dicom", data)], headers=service.key("auditor")), 403)
    wrong = service.client.post("/dicomweb/studies", content=data, headers={"Content-Type": "application/dicom",
                                                                             **service.key("integration")})  # fmt: skip
    assert_error_body(wrong, 415, "unsupported_media_type")
    body, _ = multipart([("application/dicom", data)])
    assert_error_body(service.client.post("/dicomweb/studies", content=body[:200], headers={
        "Content-Type": 'multipart/related; type="application/dicom"; boundary=nope', **service.key("integration")}), 400)  # fmt: skip
    assert not list((service.settings.data_dir / "dicom" / "incoming").glob("*.dcm"))


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=400),
    boundary=st.text(st.characters(min_codepoint=33, max_codepoint=255), min_size=1, max_size=20),
)
def test_any_body_splits_or_is_an_input_error(body: bytes, boundary: str) -> None:
    framed = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode("latin-1") + body
    for candidate in (body, framed, framed + f"\r\n--{boundary}--".encode("latin-1")):
        try:
            parts = split_parts(candidate, boundary)
        except InputError:
            continue
        assert all(isinstance(data, bytes) for _, data in parts)
