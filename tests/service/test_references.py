"""A caller's reference tells history rows apart: stored encrypted, found by exact match, shown back."""

from __future__ import annotations

import base64

from sqlalchemy import select

from cxr_pneumonia.store.db.models import AuditEvent, PredictionRecord

from .conftest import API, Service, assert_error_body

IMAGE_KEY = base64.b64encode(b"fixture-key-not-a-secret-0123456").decode()


def _predict(service: Service, data: bytes, reference: str | None = None):
    form = {"reference": reference} if reference is not None else None
    return service.client.post(
        f"{API}/predict", files={"file": ("x.jpeg", data)}, data=form, headers=service.key("clinician")
    )


def test_a_reference_is_shown_searchable_and_encrypted(
    service: Service, accepted_images: list[bytes]
) -> None:
    first = _predict(service, accepted_images[0], "ACC-2026-0001").json()
    _predict(service, accepted_images[1], "ACC-2026-0002")
    _predict(service, accepted_images[2])
    assert first["reference"] == "ACC-2026-0001"
    history = service.client.get(f"{API}/predictions", headers=service.key("clinician")).json()
    assert sorted(str(item["reference"]) for item in history["items"]) == [
        "ACC-2026-0001",
        "ACC-2026-0002",
        "None",
    ]
    found = service.client.get(
        f"{API}/predictions", params={"reference": "ACC-2026-0001"}, headers=service.key("clinician")
    ).json()
    assert [item["id"] for item in found["items"]] == [first["id"]]
    none = service.client.get(
        f"{API}/predictions", params={"reference": "ACC-2026-000"}, headers=service.key("clinician")
    ).json()
    assert none["items"] == []  # exact match only
    with service.store.reading() as session:
        row = session.get(PredictionRecord, first["id"])
        events = session.scalars(select(AuditEvent)).all()
    assert row is not None and row.reference_ciphertext and b"ACC-2026" not in row.reference_ciphertext
    assert row.reference_hmac and "ACC-2026" not in row.reference_hmac
    assert not any("ACC-2026" in str(event.detail) for event in events)  # not in the audit chain


def test_a_bad_reference_is_refused(service: Service, chest_jpeg: bytes) -> None:
    assert_error_body(_predict(service, chest_jpeg, "x" * 65), 400, "bad_reference")
    assert_error_body(_predict(service, chest_jpeg, "line\nbreak"), 400, "bad_reference")


def test_a_thumbnail_when_images_are_stored(make_service, chest_jpeg: bytes) -> None:
    service = make_service(store_images=True, image_key=IMAGE_KEY)
    out = _predict(service, chest_jpeg, "ACC-1").json()
    assert out["thumbnail_url"]
    thumb = service.client.get(out["thumbnail_url"], headers=service.key("clinician"))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    from io import BytesIO

    from PIL import Image

    assert max(Image.open(BytesIO(thumb.content)).size) <= 128
    plain = make_service()
    assert _predict(plain, chest_jpeg).json()["thumbnail_url"] is None
