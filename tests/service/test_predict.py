"""POST /predict and /predict/batch with real radiographs: the answer, the record, the heatmap."""

from __future__ import annotations

import base64
import io

from bundled_model import BUNDLED_ID, BUNDLED_PREPROCESS_VERSION
from PIL import Image
from sqlalchemy import select

from cxr_pneumonia.store import audit
from cxr_pneumonia.store.db.models import AuditEvent, PredictionRecord

from .conftest import API, Service, assert_error_body


def test_predict_returns_the_prediction_and_commits_it(service: Service, chest_jpeg: bytes) -> None:
    response = service.predict(chest_jpeg)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] in ("normal", "pneumonia")
    assert 0.0 <= body["p_pneumonia"] <= 1.0
    assert abs(body["p_bacterial"] + body["p_viral"] - body["p_pneumonia"]) < 1e-9
    assert body["model"]["model_id"] == BUNDLED_ID
    assert body["heatmap_url"] == f"{API}/predictions/{body['id']}/heatmap.png"
    assert body["image_url"] is None and body["preview"] is None  # images are not kept by default
    assert "not a diagnosis" in body["disclaimer"]
    assert body["caller"].startswith("key:") and body["source"] == "api"

    # The record is in the database (read through a fresh session, not the app's objects).
    with service.store.reading() as session:
        row = session.get(PredictionRecord, body["id"])
        assert row is not None
        assert row.input_sha256 == body["input_sha256"]
        assert (
            row.model_sha256 == body["model"]["sha256"]
            and row.preprocess_version == BUNDLED_PREPROCESS_VERSION
        )
        assert row.p_pneumonia == body["p_pneumonia"] and row.label == body["label"]
        event = session.get(AuditEvent, row.audit_seq)
        assert event is not None and event.action == "predict" and event.outcome == "accepted"
        assert event.detail["prediction_id"] == row.id and event.detail["digest"] == row.digest
        assert audit.verify(session).ok


def test_heatmap_png_is_served_from_the_record(service: Service, chest_jpeg: bytes) -> None:
    prediction = service.predict(chest_jpeg).json()
    response = service.client.get(prediction["heatmap_url"], headers=service.key("clinician"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (224, 224) and image.mode == "RGB"


def test_preview_is_a_png_data_url_at_most_512_px(
    service: Service, dicom_chest: bytes, chest_jpeg: bytes
) -> None:
    response = service.predict(chest_jpeg, preview="true")
    assert response.status_code == 200
    preview = response.json()["preview"]
    assert preview.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(preview.split(",", 1)[1])))
    assert max(image.size) <= 512


def test_dicom_upload_is_read_or_refused_cleanly(service: Service, dicom_chest: bytes) -> None:
    response = service.predict(dicom_chest, name="study.dcm", source="web")
    if response.status_code == 200:
        body = response.json()
        assert body["input_meta"]["format"] == "dicom" and body["source"] == "web"
        assert body["input_meta"]["modality"] == "CR"
    else:  # the model may refuse it (out of distribution): that is a 422 with a reason, never a 5xx
        assert assert_error_body(response, 422, "rejected")["reason"]


def test_a_refused_input_leaves_an_audit_event_and_no_record(service: Service) -> None:
    response = service.predict(b"this is not an image", name="notes.txt")
    assert_error_body(response, 400, "unsupported_format")
    with service.store.reading() as session:
        assert session.scalars(select(PredictionRecord)).first() is None
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "predict")).one()
        assert event.outcome == "refused" and event.detail["reason"] == "unsupported_format"
        assert event.request_id == response.headers["x-request-id"]


def test_batch_gives_each_file_a_prediction_or_an_error(
    service: Service, accepted_images: list[bytes]
) -> None:
    files = [
        ("files", ("a.jpeg", accepted_images[0])),
        ("files", ("empty.png", b"")),
        ("files", ("b.jpeg", accepted_images[1])),
        ("files", ("text.txt", b"hello")),
    ]
    response = service.client.post(f"{API}/predict/batch", files=files, headers=service.key("integration"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["refused"]) == (2, 2)
    ok = [r for r in body["results"] if r["ok"]]
    assert [r["index"] for r in ok] == [0, 2]
    errors = {r["index"]: r["error"]["error"] for r in body["results"] if not r["ok"]}
    assert errors == {1: "empty_file", 3: "unsupported_format"}
    with service.store.reading() as session:
        ids = set(session.scalars(select(PredictionRecord.id)))
    assert ids == {r["prediction"]["id"] for r in ok}


def test_batch_over_the_file_limit_is_refused(make_service, chest_jpeg: bytes) -> None:
    service = make_service(batch_max_files=2)
    files = [("files", (f"{i}.jpeg", chest_jpeg)) for i in range(3)]
    response = service.client.post(f"{API}/predict/batch", files=files, headers=service.key("clinician"))
    assert_error_body(response, 413, "too_many_files")


def test_same_image_twice_gives_two_records(service: Service, chest_jpeg: bytes) -> None:
    first, second = service.predict(chest_jpeg).json(), service.predict(chest_jpeg).json()
    assert first["id"] != second["id"]
    assert first["p_pneumonia"] == second["p_pneumonia"]
    assert second["cached"] is True  # the result cache answered; the request is still recorded
