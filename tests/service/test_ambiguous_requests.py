"""Ambiguous requests get a clear 4xx: two files where one is read, two credentials, unknown parameters."""

from __future__ import annotations

from .conftest import API, Service, assert_error_body


def test_two_file_parts_on_predict_are_refused(service: Service, chest_jpeg: bytes) -> None:
    response = service.client.post(
        f"{API}/predict",
        files=[("file", ("a.jpeg", chest_jpeg)), ("file", ("b.jpeg", chest_jpeg))],
        headers=service.key("clinician"),
    )
    assert_error_body(response, 422, "duplicate_field")
    with service.store.reading() as session:
        from cxr_pneumonia.store.db.models import PredictionRecord

        assert session.query(PredictionRecord).count() == 0


def test_a_key_and_a_bearer_token_together_are_refused(service: Service, chest_jpeg: bytes) -> None:
    headers = {**service.key("clinician"), **service.user("drsmith", "clinician")}
    assert_error_body(service.predict(chest_jpeg, headers), 400, "ambiguous_credentials")
    # either one alone is fine
    assert service.predict(chest_jpeg, service.key("clinician")).status_code == 200


def test_unknown_query_parameters_are_refused_like_unknown_form_fields(
    service: Service, chest_jpeg: bytes
) -> None:
    body = assert_error_body(service.predict(chest_jpeg, preveiw="true"), 422, "unknown_parameter")
    assert "preveiw" in body["detail"] and "preview" in body["detail"]
    listed = service.client.get(f"{API}/predictions", params={"limitt": 5}, headers=service.key("admin"))
    assert_error_body(listed, 422, "unknown_parameter")
    # declared parameters still work
    assert service.predict(chest_jpeg, preview="true").status_code == 200
    assert service.client.get(f"{API}/health/ready", params={}).status_code == 200
