"""Bad input gets a 4xx with the stable error body and the request id: never a 500, never a trace."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from sqlalchemy import func, select

from cxr_pneumonia.store.db.models import AuditEvent, PredictionRecord

from .conftest import API, Service, assert_error_body


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _records(service: Service) -> int:
    with service.store.reading() as session:
        return int(session.scalar(select(func.count()).select_from(PredictionRecord)) or 0)


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda jpeg: b"", 400, "empty_file"),
        (lambda jpeg: b"%PDF-1.4 not an x-ray", 400, "unsupported_format"),
        (lambda jpeg: b"GIF89a" + bytes(64), 400, "corrupt_image"),
        (lambda jpeg: jpeg[: len(jpeg) // 3], 400, "corrupt_image"),
        (lambda jpeg: _png(np.full((300, 300), 128, np.uint8)), 422, "rejected"),  # blank
        (lambda jpeg: _png(np.random.default_rng(0).integers(0, 255, (100, 400), np.uint8)), 422, "rejected"),
        (lambda jpeg: _png(np.random.default_rng(1).integers(0, 255, (40, 40), np.uint8)), 422, "rejected"),
    ],
    ids=["empty", "pdf", "broken-gif", "truncated-jpeg", "blank", "wide", "tiny"],
)
def test_unreadable_or_unsuitable_images(
    service: Service, chest_jpeg: bytes, make, status: int, code: str
) -> None:
    response = service.predict(make(chest_jpeg))
    assert_error_body(response, status, code)
    assert _records(service) == 0


def test_huge_dimensions_are_refused_before_decoding(service: Service) -> None:
    buffer = io.BytesIO()
    Image.new("1", (12_000, 10_000)).save(buffer, format="PNG")  # 120 Mpx in a few kB
    assert_error_body(service.predict(buffer.getvalue(), name="huge.png"), 413, "too_large")


def test_a_non_chest_dicom_is_refused_with_its_reason(service: Service) -> None:
    ct = Path(str(get_testdata_file("CT_small.dcm"))).read_bytes()  # pydicom's own CT sample
    body = assert_error_body(service.predict(ct, name="ct.dcm"), 422, "rejected")
    assert body["reason"] == "not_radiograph"


def test_a_file_over_the_cap_is_refused(make_service, chest_jpeg: bytes) -> None:
    service = make_service(max_bytes=len(chest_jpeg) - 1)
    assert_error_body(service.predict(chest_jpeg), 413, "too_large")


def test_a_declared_oversized_request_is_refused_before_reading(make_service) -> None:
    service = make_service(max_bytes=10_000)
    response = service.predict(
        bytes(200_000)
    )  # far beyond cap + multipart allowance: stopped by Content-Length
    body = assert_error_body(response, 413, "too_large")
    assert "request body" in body["detail"]
    with service.store.reading() as session:  # answered before authentication even ran
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_a_chunked_oversized_request_is_cut_off(make_service) -> None:
    service = make_service(max_bytes=10_000)

    def body() -> Iterator[bytes]:
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        for _ in range(50):
            yield bytes(8192)

    response = service.client.post(
        f"{API}/predict",
        content=body(),
        headers={**service.key("clinician"), "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert "content-length" not in response.request.headers
    assert_error_body(response, 413, "too_large")


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {
                "content": b"--nope\r\ngarbage",
                "headers": {"Content-Type": "multipart/form-data; boundary=zzz"},
            },
            400,
            "malformed_request",
        ),
        ({"content": b"x", "headers": {"Content-Type": "multipart/form-data"}}, 400, "malformed_request"),
        ({"json": {"file": "abc"}}, 422, "validation_error"),
        ({"data": {"file": "not a file"}}, 422, "validation_error"),
        ({"data": {"comment": "x"}}, 422, "unknown_field"),
    ],
    ids=["garbage-multipart", "no-boundary", "json-body", "file-as-text", "unknown-field-only"],
)
def test_malformed_requests(service: Service, kwargs: dict, status: int, code: str) -> None:
    headers = {**service.key("clinician"), **kwargs.pop("headers", {})}
    response = service.client.post(f"{API}/predict", headers=headers, **kwargs)
    assert_error_body(response, status, code)


def test_an_unknown_field_next_to_the_file_is_refused(service: Service, chest_jpeg: bytes) -> None:
    response = service.client.post(
        f"{API}/predict",
        files={"file": ("a.jpeg", chest_jpeg)},
        data={"patient_name": "DOE^JANE"},
        headers=service.key("clinician"),
    )
    body = assert_error_body(response, 422, "unknown_field")
    assert "patient_name" in body["detail"]
    assert _records(service) == 0


def test_validation_errors_share_the_body_and_echo_a_safe_request_id(service: Service) -> None:
    response = service.client.get(
        f"{API}/predictions",
        params={"limit": "many"},
        headers={**service.key("clinician"), "X-Request-ID": "trace-1234-abcd"},
    )
    body = assert_error_body(response, 422, "validation_error")
    assert body["request_id"] == "trace-1234-abcd"
    assert body["errors"][0]["loc"] == ["query", "limit"]
    unsafe = service.client.get(f"{API}/health/live", headers={"X-Request-ID": "<script>"})
    assert unsafe.headers["x-request-id"] != "<script>"


def test_unknown_route_and_method(service: Service) -> None:
    assert_error_body(service.client.get(f"{API}/nowhere"), 404, "not_found")
    assert_error_body(
        service.client.delete(f"{API}/predict", headers=service.key("clinician")), 405, "method_not_allowed"
    )


def test_an_unexpected_error_is_a_500_without_a_trace(make_service) -> None:
    service = make_service(raise_server_exceptions=False)

    @service.app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    response = service.client.get("/boom")
    body = assert_error_body(response, 500, "internal_error")
    assert "secret internals" not in response.text and "RuntimeError" not in body["detail"]
