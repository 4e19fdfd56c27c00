"""GET /predictions/{id}/fhir: a FHIR R4B Bundle that fhir.resources validates, and what it says."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation

from cxr_pneumonia.inference import Predictor

from .conftest import API, Service, assert_error_body


def _by_type(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["resource"]["resourceType"]: entry["resource"] for entry in bundle["entry"]}


def test_a_prediction_as_a_fhir_bundle(service: Service, chest_jpeg: bytes) -> None:
    predicted = service.predict(chest_jpeg).json()
    response = service.client.get(
        f"{API}/predictions/{predicted['id']}/fhir", headers=service.key("clinician")
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    validated = Bundle.model_validate(bundle)  # the whole bundle is valid R4B
    assert validated.type == "collection" and len(validated.entry) == 3
    resources = _by_type(bundle)
    report, observation, device = resources["DiagnosticReport"], resources["Observation"], resources["Device"]
    assert isinstance(validated.entry[0].resource, DiagnosticReport)
    assert isinstance(validated.entry[1].resource, Observation)
    assert report["status"] == "preliminary" and report["category"][0]["text"] == "imaging"
    assert "decision support, not a diagnosis" in report["conclusion"].lower()
    assert observation["code"]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "233604007",
        "display": "Pneumonia",
    }
    assert observation["valueQuantity"]["value"] == pytest.approx(predicted["p_pneumonia"], abs=1e-6)
    expected = "POS" if predicted["label"] == "pneumonia" else "NEG"
    assert observation["interpretation"][0]["coding"][0]["code"] == expected
    assert predicted["model"]["model_id"] in observation["method"]["text"]
    refer = [c for c in observation["component"] if "refer" in c["code"]["text"]]
    assert refer[0]["valueBoolean"] is predicted["refer"]
    assert device["identifier"][0]["value"] == predicted["model"]["sha256"]
    assert device["version"][0]["value"] == predicted["model"]["version"]
    # the references inside the bundle resolve to its entries
    urls = {entry["fullUrl"] for entry in bundle["entry"]}
    assert report["result"][0]["reference"] in urls and observation["device"]["reference"] in urls
    assert "imagingStudy" not in report  # a JPEG upload has no DICOM study
    assert (
        service.client.get(f"{API}/predictions/{'0' * 32}/fhir", headers=service.key("clinician")).status_code
        == 404
    )
    assert_error_body(service.client.get(f"{API}/predictions/{predicted['id']}/fhir"), 401)


def test_a_dicom_input_references_its_study(
    service: Service, predictor: Predictor, chest_jpeg: bytes
) -> None:
    """As the DICOM node (and STOW-RS) record it: the Study Instance UID becomes a logical ImagingStudy
    reference, by identifier (the bundle names no patient, so it carries no ImagingStudy resource)."""
    study = "1.2.826.0.1.3680043.8.498.12345"
    prediction_id = service.store.record_prediction(
        predictor.predict(chest_jpeg),
        source="dicom",
        caller="dicom:TEST",
        extra={"study_instance_uid": study},
    )
    bundle = service.client.get(
        f"{API}/predictions/{prediction_id}/fhir", headers=service.key("clinician")
    ).json()
    Bundle.model_validate(bundle)
    resources = _by_type(bundle)
    reference = resources["DiagnosticReport"]["imagingStudy"][0]
    assert reference["type"] == "ImagingStudy"
    assert reference["identifier"] == {"system": "urn:dicom:uid", "value": f"urn:oid:{study}"}
    assert resources["Observation"]["derivedFrom"] == [reference]
