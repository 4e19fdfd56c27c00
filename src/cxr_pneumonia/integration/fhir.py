"""A prediction as a FHIR R4B Bundle: DiagnosticReport + Observation + Device, validated by
``fhir.resources.R4B`` before it leaves.

R4B, not R5: R4 (which R4B extends without breaking) is what EHRs accept today. The bundle names no
patient (the store keeps none): the EHR links it through the DICOM Study Instance UID (a logical
ImagingStudy reference, when the input was DICOM) or through the prediction id.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from .. import DISCLAIMER
from ..store.db.models import PredictionRecord

SNOMED = "http://snomed.info/sct"
PNEUMONIA = {"system": SNOMED, "code": "233604007", "display": "Pneumonia"}
LOINC = "http://loinc.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
UCUM = "http://unitsofmeasure.org"
PREDICTION_SYSTEM = "urn:cxr-pneumonia:prediction-id"  # our prediction ids, for the EHR to find ours
MODEL_SHA256_SYSTEM = "urn:cxr-pneumonia:model-sha256"
DICOM_UID_SYSTEM = "urn:dicom:uid"
_NAMESPACE = uuid.UUID("6f1c3a52-6d5b-4e51-9a3e-2b8f0c9d7e41")  # fullUrls are stable per resource
BundleType = Literal["collection", "transaction"]


def _full_url(resource_type: str, resource_id: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{resource_type}/{resource_id}')}"


def device_id(row: PredictionRecord) -> str:
    return f"cxr-model-{row.model_sha256[:54]}"  # FHIR ids: at most 64 characters


def _conclusion(row: PredictionRecord) -> str:
    finding = "Pneumonia suggested" if row.label == "pneumonia" else "No pneumonia suggested"
    refer = "; uncertain: refer for human review" if row.refer else ""
    return (
        f"{finding} by {row.model_name} {row.model_version} (calibrated p(pneumonia) = {row.p_pneumonia:.3f}, "
        f"threshold {row.threshold:.3f}){refer}. Decision support, not a diagnosis."
    )


def _quantity(value: float) -> dict[str, Any]:
    return {"value": round(float(value), 6), "unit": "probability", "system": UCUM, "code": "1"}


def _component(text: str, value: dict[str, Any] | bool) -> dict[str, Any]:
    key = "valueBoolean" if isinstance(value, bool) else "valueQuantity"
    return {"code": {"text": text}, key: value}


def _resources(row: PredictionRecord) -> list[dict[str, Any]]:
    created = row.created_at.isoformat()
    device_ref = {
        "reference": _full_url("Device", device_id(row)),
        "display": f"{row.model_name} {row.model_version}",
    }
    study_uid = (row.extra or {}).get("study_instance_uid")
    study_ref = (
        {"type": "ImagingStudy", "identifier": {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{study_uid}"}}
        if study_uid
        else None
    )
    observation_id = f"{row.id}-pneumonia"
    positive = row.label == "pneumonia"
    components = [
        _component("p(bacterial pneumonia), calibrated", _quantity(row.p_bacterial)),
        _component("p(viral pneumonia), calibrated", _quantity(row.p_viral)),
        _component("decision threshold on p(pneumonia)", _quantity(row.threshold)),
        _component(
            "refer for human review (the conformal prediction set holds both labels)", bool(row.refer)
        ),
    ]
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id,
        "identifier": [{"system": PREDICTION_SYSTEM, "value": row.id}],
        "status": "preliminary",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "imaging",
                        "display": "Imaging",
                    }
                ]
            }
        ],
        "code": {"coding": [PNEUMONIA], "text": "Pneumonia on chest radiograph (calibrated probability)"},
        "effectiveDateTime": created,
        "issued": created,
        "valueQuantity": _quantity(row.p_pneumonia),
        "interpretation": [
            {
                "coding": [
                    {
                        "system": INTERPRETATION,
                        "code": "POS" if positive else "NEG",
                        "display": "Positive" if positive else "Negative",
                    }
                ],
                "text": row.label + (" (refer)" if row.refer else ""),
            }
        ],
        "method": {"text": f"{row.model_name}:{row.model_version} (sha256 {row.model_sha256})"},
        "device": device_ref,
        "note": [{"text": DISCLAIMER}],
        "component": components,
    }
    if study_ref is not None:
        observation["derivedFrom"] = [study_ref]
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": row.id,
        "identifier": [{"system": PREDICTION_SYSTEM, "value": row.id}],
        "status": "preliminary",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                        "code": "RAD",
                        "display": "Radiology",
                    }
                ],
                "text": "imaging",
            }
        ],
        "code": {
            "coding": [{"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}],
            "text": "Chest radiograph: AI pneumonia decision support",
        },
        "effectiveDateTime": created,
        "issued": created,
        "performer": [device_ref],
        "result": [{"reference": _full_url("Observation", observation_id)}],
        "conclusion": _conclusion(row),
        **({"conclusionCode": [{"coding": [PNEUMONIA]}]} if positive else {}),
        **({"imagingStudy": [study_ref]} if study_ref is not None else {}),
    }
    device: dict[str, Any] = {
        "resourceType": "Device",
        "id": device_id(row),
        "identifier": [{"system": MODEL_SHA256_SYSTEM, "value": row.model_sha256}],
        "status": "active",
        "manufacturer": "CXR Pneumonia Detector (open source)",
        "deviceName": [{"name": row.model_name, "type": "model-name"}],
        "type": {"text": "AI decision support software (chest radiograph, pneumonia)"},
        "version": [
            {"value": row.model_version},
            {"type": {"text": "preprocess"}, "value": row.preprocess_version},
        ],
        "note": [{"text": DISCLAIMER}],
    }
    return [report, observation, device]


def prediction_bundle(row: PredictionRecord, bundle_type: BundleType = "collection") -> dict[str, Any]:
    """The bundle as JSON, validated. ``transaction``: every entry a PUT by id, so sending it twice
    (a retry after a lost answer) updates the same resources instead of creating copies."""
    entries = []
    for resource in _resources(row):
        kind, rid = resource["resourceType"], resource["id"]
        entry: dict[str, Any] = {"fullUrl": _full_url(kind, rid), "resource": resource}
        if bundle_type == "transaction":
            entry["request"] = {"method": "PUT", "url": f"{kind}/{rid}"}
        entries.append(entry)
    bundle = {
        "resourceType": "Bundle",
        "id": row.id,
        "identifier": {"system": PREDICTION_SYSTEM, "value": row.id},
        "type": bundle_type,
        "timestamp": row.created_at.isoformat(),
        "entry": entries,
    }
    from fhir.resources.R4B.bundle import Bundle  # here: the models take ~1 s to import, not every start

    validated = Bundle.model_validate(bundle)  # raises on anything R4B does not allow
    result: dict[str, Any] = json.loads(validated.model_dump_json(exclude_none=True))
    return result
