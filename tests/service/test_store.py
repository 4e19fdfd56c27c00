"""The Store facade (what the DICOM node calls) and images kept encrypted at rest."""

from __future__ import annotations

import base64
import io
import os
import stat
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from cxr_pneumonia.errors import CXRError
from cxr_pneumonia.inference import Predictor
from cxr_pneumonia.store import audit
from cxr_pneumonia.store.crypto import ImageCipher, ImageKeyError
from cxr_pneumonia.store.db.models import AuditEvent, PredictionRecord, StoredImage
from cxr_pneumonia.store.facade import Store

from .conftest import API, Service, assert_error_body, service_settings


def test_record_prediction_commits_record_and_event(
    tmp_path: Path, bundled_model_path: Path, predictor: Predictor, chest_jpeg: bytes
) -> None:
    settings = service_settings(tmp_path / "data", bundled_model_path)
    store = Store.from_settings(settings)
    prediction = predictor.predict(chest_jpeg)
    extra = {"sop_instance_uid": "2.25.1234", "study_instance_uid": "2.25.5678"}
    prediction_id = store.record_prediction(
        prediction,
        source="dicom",
        caller="key:abc123abc123",
        client="10.0.0.9",
        request_id="assoc-1",
        extra=extra,
        image=chest_jpeg,
    )
    store.audit("dicom_receive", actor="key:abc123abc123", outcome="ok", detail={"calling_ae": "PACS"})
    store.close()

    reopened = Store.from_settings(settings)  # a new engine: only what was committed is visible
    with reopened.reading() as session:
        row = session.get(PredictionRecord, prediction_id)
        assert row is not None and row.source == "dicom" and row.extra == extra
        assert row.image_sha256 is None  # images are not kept unless CXR_STORE_IMAGES
        assert session.scalars(select(StoredImage)).first() is None
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
        assert actions == ["predict", "dicom_receive"]
        assert audit.verify(session).ok
    with pytest.raises(ValueError):
        reopened.record_prediction(prediction, source="fax", caller="x")
    reopened.close()


def test_images_are_kept_encrypted_only_when_asked(
    make_service, dicom_chest: bytes, chest_jpeg: bytes
) -> None:
    service = make_service(store_images=True)
    body = service.predict(chest_jpeg).json()
    assert body["image_url"] and body["overlay_url"]
    key_file = service.settings.data_dir / "image.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # generated on first use
    with service.store.reading() as session:
        stored = session.get(StoredImage, body["input_sha256"])
        assert stored is not None
        assert b"\x89PNG" not in stored.ciphertext and b"JFIF" not in stored.ciphertext
        plain = service.store.cipher.open(
            stored.nonce, stored.ciphertext, stored.sha256.encode(), stored.key_id
        )
    assert plain.startswith(b"\x89PNG")
    headers = service.key("auditor")
    image = service.client.get(body["image_url"], headers=headers)
    overlay = service.client.get(body["overlay_url"], headers=headers)
    assert image.headers["content-type"] == overlay.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (224, 224)
    assert Image.open(io.BytesIO(overlay.content)).mode == "RGB"


def test_a_dicom_is_kept_as_pixels_without_its_header(make_service, dicom_chest: bytes) -> None:
    service = make_service(store_images=True)
    store = service.store
    predictor = service.app.state.cxr.predictor
    try:
        prediction = predictor.predict(dicom_chest)
    except CXRError:
        pytest.skip("the served model refuses this DICOM file (out of distribution)")
    prediction_id = store.record_prediction(prediction, source="dicom", caller="key:test", image=dicom_chest)
    with store.reading() as session:
        row = session.get(PredictionRecord, prediction_id)
        assert row is not None and row.image_sha256
        png = store.read_image(session, row.image_sha256)
    assert png is not None and png.startswith(b"\x89PNG") and b"DICM" not in png
    assert Image.open(io.BytesIO(png)).size == (1024, 1024)


def test_without_stored_images_the_image_routes_say_so(service: Service, chest_jpeg: bytes) -> None:
    prediction_id = service.predict(chest_jpeg).json()["id"]
    for name in ("image.png", "overlay.png"):
        response = service.client.get(
            f"{API}/predictions/{prediction_id}/{name}", headers=service.key("clinician")
        )
        assert_error_body(response, 404, "not_stored")


def test_the_image_key_comes_from_settings_and_a_wrong_key_is_refused(
    tmp_path: Path, bundled_model_path: Path
) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    settings = service_settings(tmp_path, bundled_model_path, image_key=key)
    cipher = ImageCipher.from_settings(settings)
    nonce, sealed = cipher.seal(b"pixels", b"sha")
    assert cipher.open(nonce, sealed, b"sha", cipher.key_id) == b"pixels"
    key_file = tmp_path / "key.b64"
    key_file.write_text(base64.b64encode(os.urandom(32)).decode())
    other = ImageCipher.from_settings(service_settings(tmp_path, bundled_model_path, image_key_file=key_file))
    with pytest.raises(ImageKeyError, match="another key"):
        other.open(nonce, sealed, b"sha", cipher.key_id)
    with pytest.raises(ImageKeyError, match="altered"):
        cipher.open(nonce, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"sha", cipher.key_id)
    with pytest.raises(ImageKeyError, match="32 bytes"):
        ImageCipher.from_settings(service_settings(tmp_path, bundled_model_path, image_key="c2hvcnQ="))
    assert not (tmp_path / "image.key").exists()  # a configured key means no generated one


def test_the_storage_form_of_a_dicom_keeps_pixels_and_drops_the_header(
    dicom_chest: bytes, pydicom_data_file
) -> None:
    from cxr_pneumonia.imaging import load
    from cxr_pneumonia.store.images import storage_png

    eight_bit = load(dicom_chest)
    png = storage_png(eight_bit)
    assert png.startswith(b"\x89PNG") and b"DICM" not in png
    # 8-bit source, stored at 8 bits: at most one grey step apart (the decoded pixels are windowed to
    # the image's own range, so they need not sit on the 1/255 grid)
    assert abs(load(png).pixels - eight_bit.pixels).max() <= 1 / 255 + 1e-6

    deep = load(pydicom_data_file("RG1_UNCR.dcm"))  # 15-bit CR chest
    deep_png = storage_png(deep)
    assert Image.open(io.BytesIO(deep_png)).mode.startswith("I")  # kept at 16 bits, not squashed to 8
    assert abs(load(deep_png).pixels - deep.pixels).max() <= 1 / 65535 + 1e-6
