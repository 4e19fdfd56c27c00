"""The DICOM Structured Report (Comprehensive SR) that carries a result, or a refusal, to the PACS.

Content tree (Comprehensive SR rather than TID 1500, whose tree has no place for the free-text
statement that this is decision support, not a diagnosis)::

    CONTAINER  (LN 18748-4) Diagnostic imaging report
      HAS OBS CONTEXT   TID 1002 observer context: device = this software
      HAS CONCEPT MOD   (DCM 121058) Procedure reported = (SCT 399208008) Plain chest X-ray
      CONTAINS TEXT     (DCM 121106) Comment = "AI decision support, not a diagnosis ..."
      CONTAINS CONTAINER (DCM 121070) Findings
        CONTAINS CODE   (DCM 121071) Finding = Pneumonia | No pneumonia detected | Not analysed
          HAS CONCEPT MOD   TID 4019 algorithm name, version, parameters (model sha256)
          INFERRED FROM IMAGE  the analysed radiograph
        CONTAINS NUM    probability of pneumonia, bacterial, viral; decision threshold; OOD score
        CONTAINS CODE   pneumonia subtype; refer to a radiologist (yes/no)
        CONTAINS TEXT   quality notes, or the reason the image was not analysed

Concepts without a standard code use the private coding scheme ``99CXRAI`` (PS3.16 8.2: "99" prefix).
"""

from __future__ import annotations

import highdicom as hd
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian

from .. import DISCLAIMER
from ..inference.prediction import Prediction
from .provenance import (
    MANUFACTURER,
    SR_SERIES_NUMBER,
    Provenance,
    copy_patient_study,
    derived_uid,
    evidence_header,
)

SCHEME = "99CXRAI"
STATEMENT = "AI decision support, not a diagnosis."


def private(value: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=value, scheme_designator=SCHEME, meaning=meaning)


def _sct(value: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=value, scheme_designator="SCT", meaning=meaning)


def _dcm(value: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=value, scheme_designator="DCM", meaning=meaning)


# Concept names (what a content item is) ...
REPORT = hd.sr.CodedConcept(value="18748-4", scheme_designator="LN", meaning="Diagnostic imaging report")
PROCEDURE_REPORTED = _dcm("121058", "Procedure reported")
COMMENT = _dcm("121106", "Comment")
FINDINGS = _dcm("121070", "Findings")
FINDING = _dcm("121071", "Finding")
SOURCE_IMAGE = _dcm("121112", "Source of Measurement")
P_PNEUMONIA = private("P-PNEUMONIA", "Probability of pneumonia")
P_BACTERIAL = private("P-BACTERIAL", "Probability of bacterial pneumonia")
P_VIRAL = private("P-VIRAL", "Probability of viral pneumonia")
THRESHOLD = private("THRESHOLD", "Decision threshold on the probability of pneumonia")
OOD_SCORE = private("OOD-SCORE", "Out-of-distribution score")
OOD_THRESHOLD = private("OOD-THRESHOLD", "Out-of-distribution threshold")
SUBTYPE = private("SUBTYPE", "Pneumonia subtype")
REFER = private("REFER", "Refer to a radiologist")
QUALITY_NOTE = private("QUALITY", "Image quality note")
REASON_CODE = private("REASON-CODE", "Reason not analysed (code)")
REASON = private("REASON", "Reason not analysed")

# ... and coded values.
CHEST_X_RAY = _sct("399208008", "Plain chest X-ray")
PNEUMONIA = _sct("233604007", "Pneumonia")
NO_PNEUMONIA = private("NO-PNEUMONIA", "No pneumonia detected")
NOT_ANALYSED = private("NOT-ANALYSED", "Not analysed")
BACTERIAL = _sct("53084003", "Bacterial pneumonia")
VIRAL = _sct("75570004", "Viral pneumonia")
YES = _sct("373066001", "Yes")
NO = _sct("373067005", "No")
UNITLESS = hd.sr.CodedConcept(value="1", scheme_designator="UCUM", meaning="no units")

_CONTAINS = hd.sr.RelationshipTypeValues.CONTAINS


def finding_report(
    source: Dataset, source_sha256: str, prediction: Prediction, provenance: Provenance
) -> Dataset:
    """The SR for an analysed radiograph, in the source's study, in this model's SR series."""
    finding = _finding_item(
        source, PNEUMONIA if prediction.label == "pneumonia" else NO_PNEUMONIA, provenance
    )
    items: list[hd.sr.ContentItem] = [
        finding,
        _num(P_PNEUMONIA, prediction.p_pneumonia),
        _num(P_BACTERIAL, prediction.p_bacterial),
        _num(P_VIRAL, prediction.p_viral),
        _num(THRESHOLD, prediction.threshold),
    ]
    if prediction.subtype is not None:
        items.append(_code(SUBTYPE, BACTERIAL if prediction.subtype == "bacterial" else VIRAL))
    items.append(_code(REFER, YES if prediction.refer else NO))
    items += [_num(OOD_SCORE, prediction.ood_score), _num(OOD_THRESHOLD, prediction.ood_threshold)]
    items += [_text(QUALITY_NOTE, f"{f.code}: {f.detail}") for f in prediction.findings]
    return _document(source, source_sha256, "sr", items, provenance, "AI pneumonia report (decision support)")


def refusal_report(
    source: Dataset, source_sha256: str, reason: str, detail: str, provenance: Provenance
) -> Dataset:
    """The SR that says an instance was not analysed, and why (sent only when configured)."""
    items: list[hd.sr.ContentItem] = [
        _finding_item(source, NOT_ANALYSED, provenance),
        _text(REASON_CODE, reason),
        _text(REASON, detail[:1024]),
    ]
    return _document(source, source_sha256, "refusal-sr", items, provenance, "AI pneumonia: not analysed")


def _document(
    source: Dataset,
    source_sha256: str,
    kind: str,
    findings: list[hd.sr.ContentItem],
    provenance: Provenance,
    series_description: str,
) -> Dataset:
    header = evidence_header(source)
    series_uid, instance_uid = provenance.uids(source, source_sha256, kind)
    findings_container = hd.sr.ContainerContentItem(name=FINDINGS, relationship_type=_CONTAINS)
    findings_container.ContentSequence = hd.sr.ContentSequence(findings)
    root = hd.sr.ContainerContentItem(name=REPORT)
    root.ContentSequence = hd.sr.ContentSequence(
        [
            *_observer(provenance),
            hd.sr.CodeContentItem(
                name=PROCEDURE_REPORTED,
                value=CHEST_X_RAY,
                relationship_type=hd.sr.RelationshipTypeValues.HAS_CONCEPT_MOD,
            ),
            _text(COMMENT, f"{STATEMENT} {DISCLAIMER}"),
            findings_container,
        ]
    )
    report = hd.sr.ComprehensiveSR(
        evidence=[header],
        content=root,
        series_instance_uid=series_uid,
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=instance_uid,
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,  # PRELIMINARY and UNVERIFIED: a clinician must review it
        is_verified=False,
        transfer_syntax_uid=ExplicitVRLittleEndian,
        contributing_equipment=[provenance.equipment()],
        series_description=series_description,
        coding_schemes=[
            CodingSchemeIdentificationItem(
                designator=SCHEME,
                name="CXR Pneumonia Detector concepts",
                responsible_organization=MANUFACTURER,
            )
        ],
    )
    provenance.stamp(report)
    copy_patient_study(source, report)
    return report


def _observer(provenance: Provenance) -> hd.sr.ObserverContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=derived_uid("device", provenance.model.sha256),
        name=MANUFACTURER,
        manufacturer_name=MANUFACTURER,
        model_name=provenance.model_name,
    )
    return hd.sr.ObserverContext(observer_type=codes.cid270.Device, observer_identifying_attributes=device)


def _finding_item(
    source: Dataset, value: hd.sr.CodedConcept, provenance: Provenance
) -> hd.sr.CodeContentItem:
    item = hd.sr.CodeContentItem(name=FINDING, value=value, relationship_type=_CONTAINS)
    algorithm = hd.sr.AlgorithmIdentification(
        name=provenance.model.name,
        version=provenance.model.version,
        parameters=[f"model sha256 {provenance.model.sha256}", f"software {provenance.software_versions[0]}"],
        manufacturer=MANUFACTURER,
    )
    image = hd.sr.ImageContentItem(
        name=SOURCE_IMAGE,
        referenced_sop_class_uid=source.SOPClassUID,
        referenced_sop_instance_uid=source.SOPInstanceUID,
        relationship_type=hd.sr.RelationshipTypeValues.INFERRED_FROM,
    )
    item.ContentSequence = hd.sr.ContentSequence([*algorithm, image])
    return item


def _num(name: hd.sr.CodedConcept, value: float) -> hd.sr.NumContentItem:
    return hd.sr.NumContentItem(name=name, value=float(value), unit=UNITLESS, relationship_type=_CONTAINS)


def _code(name: hd.sr.CodedConcept, value: hd.sr.CodedConcept) -> hd.sr.CodeContentItem:
    return hd.sr.CodeContentItem(name=name, value=value, relationship_type=_CONTAINS)


def _text(name: hd.sr.CodedConcept, value: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(name=name, value=value, relationship_type=_CONTAINS)
