"""The SR and Secondary Capture builders, on real files and real predictions."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from cxr_pneumonia.dicom_node.capture import banner_lines, capture_image
from cxr_pneumonia.dicom_node.provenance import Provenance
from cxr_pneumonia.dicom_node.sr import finding_report, refusal_report
from cxr_pneumonia.imaging import load

from .results import SCHEME, coded, content_items, numeric, processing_equipment, referenced_sources, texts


def roundtrip(ds: Dataset) -> Dataset:
    """Encode and decode: what a PACS receives, not the object in memory."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


@pytest.fixture(scope="module")
def analysed(kermany_capture: Path, predictor: Any) -> tuple[Dataset, bytes, Any]:
    data = kermany_capture.read_bytes()
    return pydicom.dcmread(kermany_capture), data, predictor.predict(data, use_cache=False)


def test_sr_states_the_prediction_and_that_it_is_not_a_diagnosis(
    analysed: tuple[Dataset, bytes, Any],
) -> None:
    source, _, prediction = analysed
    sr = roundtrip(finding_report(source, prediction.input_sha256, prediction, Provenance(prediction.model)))
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert numeric(sr, "P-PNEUMONIA") == prediction.p_pneumonia  # exactly: FloatingPointValue
    p_text = next(
        i.MeasuredValueSequence[0].NumericValue for i in content_items(sr) if i.ValueType == "NUM"
    )  # the decimal string a viewer shows
    assert float(p_text) == pytest.approx(prediction.p_pneumonia, abs=1e-9)
    assert numeric(sr, "P-BACTERIAL") + numeric(sr, "P-VIRAL") == pytest.approx(prediction.p_pneumonia)
    assert numeric(sr, "THRESHOLD") == prediction.threshold
    assert numeric(sr, "OOD-SCORE") == prediction.ood_score
    finding = ("SCT", "233604007") if prediction.label == "pneumonia" else (SCHEME, "NO-PNEUMONIA")
    assert coded(sr, "DCM", "121071") == finding
    if prediction.subtype is None:
        with pytest.raises(AssertionError):
            coded(sr, SCHEME, "SUBTYPE")
    else:
        assert coded(sr, SCHEME, "SUBTYPE") == (
            "SCT",
            {"bacterial": "53084003", "viral": "75570004"}[prediction.subtype],
        )
    assert coded(sr, SCHEME, "REFER") == ("SCT", "373066001" if prediction.refer else "373067005")
    assert any(t.startswith("AI decision support, not a diagnosis.") for t in texts(sr))
    assert prediction.model.name in texts(sr) and prediction.model.version in texts(sr)  # TID 4019
    assert any(prediction.model.sha256 in t for t in texts(sr))
    assert coded(sr, "DCM", "121005") == ("DCM", "121007")  # observer: a device, not a person
    assert referenced_sources(sr) == [source.SOPInstanceUID]
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == (
        "COMPLETE",
        "UNVERIFIED",
        "PRELIMINARY",
    )
    assert [s.CodingSchemeDesignator for s in sr.CodingSchemeIdentificationSequence] == [SCHEME]


def test_results_join_the_source_study_and_name_the_software(analysed: tuple[Dataset, bytes, Any]) -> None:
    source, data, prediction = analysed
    provenance = Provenance(prediction.model)
    sr = roundtrip(finding_report(source, prediction.input_sha256, prediction, provenance))
    sc = roundtrip(capture_image(source, prediction.input_sha256, load(data), prediction, provenance))
    for result in (sr, sc):
        for keyword in (
            "StudyInstanceUID",
            "PatientID",
            "PatientName",
            "PatientSex",
            "AccessionNumber",
            "StudyID",
        ):
            assert result.get(keyword) == source.get(keyword), keyword
        assert result.SeriesInstanceUID != source.SeriesInstanceUID
        assert result.Manufacturer == "CXR Pneumonia Detector"
        assert prediction.model.sha256 in result.SoftwareVersions
        [equipment] = processing_equipment(result)
        assert equipment.ManufacturerModelName == f"{prediction.model.name} {prediction.model.version}"
        assert prediction.model.sha256 in equipment.ContributionDescription
    assert sr.SeriesInstanceUID != sc.SeriesInstanceUID  # SR and OT: one modality per series
    assert (sr.Modality, sc.Modality) == ("SR", "OT")


def test_result_uids_are_stable_for_the_same_input_and_distinct_otherwise(
    analysed: tuple[Dataset, bytes, Any],
) -> None:
    source, _, prediction = analysed
    provenance = Provenance(prediction.model)
    first = finding_report(source, prediction.input_sha256, prediction, provenance)
    again = finding_report(source, prediction.input_sha256, prediction, provenance)
    assert first.SOPInstanceUID == again.SOPInstanceUID  # re-analysis after a crash: same object
    other_bytes = finding_report(source, "0" * 64, prediction, provenance)  # same UID, other file
    assert other_bytes.SOPInstanceUID != first.SOPInstanceUID
    assert other_bytes.SeriesInstanceUID == first.SeriesInstanceUID  # one AI series per study
    assert pydicom.uid.UID(first.SOPInstanceUID).is_valid


def test_capture_burns_in_heatmap_and_banner(analysed: tuple[Dataset, bytes, Any]) -> None:
    source, data, prediction = analysed
    xray = load(data)
    sc = roundtrip(
        capture_image(source, prediction.input_sha256, xray, prediction, Provenance(prediction.model))
    )
    assert sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert (sc.PhotometricInterpretation, sc.SamplesPerPixel, sc.BitsAllocated) == ("RGB", 3, 8)
    assert sc.BurnedInAnnotation == "YES"
    assert list(sc.PatientOrientation) == list(source.PatientOrientation)
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    pixels = sc.pixel_array.astype(np.int16)
    # The image keeps the radiograph's aspect ratio below a banner band.
    scale = sc.Columns / xray.shape[1]
    band = sc.Rows - round(xray.shape[0] * scale)
    assert band > 40
    banner, radiograph = pixels[:band], pixels[band:]
    assert (banner.max(axis=2) > 200).mean() > 0.01, "no text in the banner"
    assert np.median(banner) < 40, "the banner is not a dark band"
    assert np.abs(radiograph[..., 0] - radiograph[..., 2]).mean() > 2.0, "no heatmap colour"
    lines = banner_lines(prediction)
    assert lines[0] == "AI decision support, not a diagnosis"
    assert f"{prediction.p_pneumonia:.3f}" in lines[1]
    assert ("REFER" in lines[2]) == prediction.refer
    assert prediction.model.version in lines[3]
    assert " | ".join(lines) == sc.ImageComments


def test_a_source_without_orientation_or_patient_header_still_gets_valid_results(
    analysed: tuple[Dataset, bytes, Any],
) -> None:
    source, data, prediction = analysed
    bare = pydicom.dcmread(io.BytesIO(data))
    for keyword in ("PatientOrientation", "PatientName", "PatientBirthDate", "AccessionNumber", "StudyID"):
        bare.pop(keyword, None)
    provenance = Provenance(prediction.model)
    sc = roundtrip(capture_image(bare, prediction.input_sha256, load(data), prediction, provenance))
    assert "PatientOrientation" in sc and not sc.PatientOrientation  # present, empty: unknown, not invented
    sr = roundtrip(finding_report(bare, prediction.input_sha256, prediction, provenance))
    assert sr.PatientName == "" and sr.PatientID == source.PatientID


def test_refusal_report_says_why(pydicom_data_file: Any, predictor: Any) -> None:
    from cxr_pneumonia.errors import RejectedImage

    tibia_path = pydicom_data_file("RG3_UNCR.dcm")
    with pytest.raises(RejectedImage) as refused:
        predictor.predict(tibia_path)
    tibia = pydicom.dcmread(tibia_path, stop_before_pixels=True)
    report = refusal_report(tibia, "f" * 64, refused.value.reason, refused.value.detail,
                            Provenance(predictor.model_ref))  # fmt: skip
    sr = roundtrip(report)
    assert coded(sr, "DCM", "121071") == (SCHEME, "NOT-ANALYSED")
    assert "not_chest" in texts(sr) and refused.value.detail in texts(sr)
    assert not [i for i in content_items(sr) if i.ValueType == "NUM"]  # no numbers for a refused image
    assert (sr.StudyInstanceUID, sr.PatientID) == (tibia.StudyInstanceUID, tibia.PatientID)
    assert any("not a diagnosis" in t for t in texts(sr))
