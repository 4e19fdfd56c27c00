"""De-identification (PS3.15 Annex E Basic Profile) on real files and on a dataset full of identity."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.datadict import keyword_dict
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, generate_uid

from cxr_pneumonia.imaging import Limits, load
from cxr_pneumonia.imaging import deid as deid_module
from cxr_pneumonia.imaging.deid import deidentify, pseudonymous_uid, safe_metadata

LIMITS = Limits()
SALT = "deployment-secret-1"
IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "InstitutionName",
    "ReferringPhysicianName",
    "AccessionNumber",
    "StudyDate",
    "StudyTime",
    "OtherPatientIDs",
    "StationName",
    "DeviceSerialNumber",
)
INSTANCE_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")


def walk(ds: Dataset) -> Iterator[pydicom.DataElement]:
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from walk(item)


def written(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def real_files(shared_dicom: Path, pydicom_data_file) -> list[Path]:
    return [
        pydicom_data_file("RG1_UNCR.dcm"),
        shared_dicom / "cr-chest-monochrome2-jpeg-baseline.dcm",
        shared_dicom / "cr-chest-fake-monochrome1.dcm",
    ]


def test_real_files_lose_identity_and_keep_their_image(real_files: list[Path]) -> None:
    for path in real_files:
        original = pydicom.dcmread(path)
        before = {k: str(original.get(k, "") or "") for k in IDENTIFYING}
        out = deidentify(original, uid_salt=SALT)
        for keyword, value in before.items():
            if value:
                assert str(out.get(keyword, "") or "") != value, f"{path.name}: {keyword} kept its value"
        assert out.PatientIdentityRemoved == "YES"
        assert out.DeidentificationMethod and len(out.DeidentificationMethod) <= 64
        assert [c.CodeValue for c in out.DeidentificationMethodCodeSequence] == ["113100", "113108"]
        assert out.PixelData == original.PixelData
        for keyword in ("Modality", "BodyPartExamined", "ViewPosition", "PhotometricInterpretation", "Rows",
                        "Columns", "BitsStored", "PixelSpacing", "PatientSex", "SOPClassUID"):  # fmt: skip
            assert out.get(keyword) == original.get(keyword), keyword
        # Written out, it is still the same image to the loader.
        np.testing.assert_array_equal(load(written(out), LIMITS).pixels, load(path, LIMITS).pixels)


def test_rg1_identity_was_there_to_remove(pydicom_data_file) -> None:
    """Guard against a vacuous pass: RG1 does carry a name, an ID and an institution."""
    ds = pydicom.dcmread(pydicom_data_file("RG1_UNCR.dcm"), stop_before_pixels=True)
    assert str(ds.PatientName) and ds.PatientID and ds.InstitutionName
    out = deidentify(ds, uid_salt=SALT)
    assert "InstitutionName" not in out
    assert not str(out.PatientName) and not out.PatientID


def test_uids_replaced_stable_per_salt_and_different_across_salts(real_files: list[Path]) -> None:
    for path in real_files:
        original = pydicom.dcmread(path, stop_before_pixels=True)
        first, again = deidentify(original, uid_salt=SALT), deidentify(original, uid_salt=SALT)
        other = deidentify(original, uid_salt="another-deployment")
        present = [k for k in INSTANCE_UIDS if k in original]
        assert {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"} <= set(present)
        for keyword in present:
            new = first[keyword].value
            assert new != original[keyword].value
            assert UID(new).is_valid and new.startswith("2.25.")
            assert again[keyword].value == new
            assert other[keyword].value != new
        assert first.file_meta.MediaStorageSOPInstanceUID == first.SOPInstanceUID
        assert first.SOPClassUID == original.SOPClassUID
        assert first.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID


def test_the_input_is_not_modified(pydicom_data_file) -> None:
    ds = pydicom.dcmread(pydicom_data_file("RG1_UNCR.dcm"), stop_before_pixels=True)
    name, uid = str(ds.PatientName), ds.SOPInstanceUID
    deidentify(ds, uid_salt=SALT)
    assert str(ds.PatientName) == name and ds.SOPInstanceUID == uid


def test_private_tags_are_removed_everywhere() -> None:
    ct = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    assert any(elem.tag.is_private for elem in walk(ct))
    out = deidentify(ct, uid_salt=SALT)
    assert not any(elem.tag.is_private for elem in walk(out))
    assert load(written(out), LIMITS).meta.modality == "CT"


def test_safe_metadata_matches_what_the_loader_reports(real_files: list[Path]) -> None:
    for path in real_files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        meta = load(path, LIMITS).meta.to_dict()
        safe = safe_metadata(ds)
        expected = {key: meta[key] for key in safe}
        if expected["pixel_spacing_mm"] is not None:
            expected["pixel_spacing_mm"] = tuple(expected["pixel_spacing_mm"])
        assert safe == expected
        assert safe_metadata(deidentify(ds, uid_salt=SALT)) == safe  # de-identification keeps all of it
        assert set(safe) == {"modality", "sop_class_uid", "body_part", "view_position", "photometric",
                             "transfer_syntax", "pixel_spacing_mm", "patient_age_years", "patient_sex"}  # fmt: skip


# -- a dataset full of identity, in places a table-only approach would miss --------------------------

SECRETS = ("Doe", "MRN-0001", "19800101", "General Hospital", "Main Street", "Dr Who", "Op Erator", "SN-12345",
           "XR-ROOM-7", "ACC-777", "call me", "history of", "PLATE-9", "private note", "overlay text")  # fmt: skip


@pytest.fixture
def identity_laden(make_dataset) -> Dataset:
    ds = make_dataset(
        np.arange(16, dtype=np.uint16).reshape(4, 4),
        PatientName="Doe^John",
        PatientID="MRN-0001",
        PatientBirthDate="19800101",
        PatientAge="095Y",
        PatientSex="M",
        PatientAddress="1 Main Street",
        OtherPatientIDs="MRN-0001-OLD",
        PatientComments="call me on my mobile",
        AdditionalPatientHistory="history of asthma",
        InstitutionName="General Hospital",
        InstitutionAddress="2 Main Street",
        ReferringPhysicianName="Dr Who",
        OperatorsName="Op Erator",
        PerformingPhysicianName="Dr Who",
        StationName="XR-ROOM-7",
        DeviceSerialNumber="SN-12345",
        PlateID="PLATE-9",
        AccessionNumber="ACC-777",
        StudyDate="20240102",
        StudyTime="101010",
        SeriesDate="20240102",
        AcquisitionDateTime="20240102101010",
        ImageComments="Doe, portable",
        StudyDescription="CHEST Doe",
        PixelSpacing=[0.2, 0.2],
    )
    ds.FrameOfReferenceUID = generate_uid()
    referenced = Dataset()
    referenced.ReferencedSOPClassUID = ds.SOPClassUID
    referenced.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    ds.ReferencedImageSequence = Sequence([referenced])
    request = Dataset()
    request.RequestedProcedureID = "ACC-777"
    request.ScheduledProcedureStepDescription = "private note"
    ds.RequestAttributesSequence = Sequence([request])
    nested_person = Dataset()
    nested_person.PersonName = "Doe^John"  # a PN in a sequence the tables do not list
    ds.add_new((0x0040, 0xA07A), "SQ", Sequence([nested_person]))  # ParticipantSequence
    ds.add_new((0x0009, 0x0010), "LO", "ACME private")
    ds.add_new((0x0009, 0x1001), "LO", "private note")
    ds.add_new((0x6000, 0x3000), "OW", b"\x00\x01" * 8)  # overlay bits
    ds.add_new((0x6000, 0x4000), "LT", "overlay text")
    return ds


def test_no_secret_survives_anywhere(identity_laden: Dataset) -> None:
    out = deidentify(identity_laden, uid_salt=SALT)
    text = "\n".join(f"{elem.tag} {elem.value!r}" for elem in walk(out) if elem.VR not in ("OB", "OW"))
    for secret in SECRETS:
        assert secret not in text, secret
    assert not any(elem.tag.group in (0x6000, 0x0009) for elem in walk(out))
    assert "RequestAttributesSequence" not in out


def test_kept_fields_and_patient_characteristics(identity_laden: Dataset) -> None:
    out = deidentify(identity_laden, uid_salt=SALT)
    assert (out.Modality, out.BodyPartExamined, out.ViewPosition, out.PatientSex) == (
        "CR",
        "CHEST",
        "PA",
        "M",
    )
    assert out.PatientAge == "090Y"  # ages over 89 are aggregated (HIPAA Safe Harbor)
    assert [float(v) for v in out.PixelSpacing] == [0.2, 0.2]
    assert out.LongitudinalTemporalInformationModified == "REMOVED"
    # Type 2 attributes stay present but empty, so the object still validates.
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "AccessionNumber"):
        assert keyword in out and not out[keyword].value
    for keyword in ("SeriesDate", "AcquisitionDateTime", "OperatorsName", "ImageComments", "PlateID"):
        assert keyword not in out


def test_references_follow_the_same_uid_mapping(identity_laden: Dataset) -> None:
    out = deidentify(identity_laden, uid_salt=SALT)
    reference = out.ReferencedImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == out.SOPInstanceUID != identity_laden.SOPInstanceUID
    assert reference.ReferencedSOPClassUID == identity_laden.SOPClassUID


def test_images_of_one_study_still_share_a_study(make_dataset) -> None:
    study = generate_uid()
    first = make_dataset(np.zeros((2, 2), np.uint8), StudyInstanceUID=study)
    second = make_dataset(np.zeros((2, 2), np.uint8), StudyInstanceUID=study)
    a, b = deidentify(first, uid_salt=SALT), deidentify(second, uid_salt=SALT)
    assert a.StudyInstanceUID == b.StudyInstanceUID != study
    assert a.SOPInstanceUID != b.SOPInstanceUID


def test_written_result_decodes(identity_laden: Dataset) -> None:
    out = deidentify(identity_laden, uid_salt=SALT)
    xray = load(written(out), LIMITS)
    np.testing.assert_allclose(xray.pixels.ravel(), np.arange(16) / 15.0, atol=1e-6)


def test_pseudonymous_uid() -> None:
    uid = "1.2.826.0.1.3680043.2.1125.1.1"
    new = pseudonymous_uid(uid, SALT)
    assert new == pseudonymous_uid(uid + "\x00", SALT)  # padding is not part of the UID
    assert new != pseudonymous_uid(uid, SALT + "x") and new != pseudonymous_uid(uid + "2", SALT)
    assert new.is_valid and len(new) <= 64 and new.startswith("2.25.")
    assert int(new.removeprefix("2.25.")) < 2**128


def test_salt_is_required() -> None:
    with pytest.raises(ValueError):
        deidentify(Dataset(), uid_salt="")


def test_profile_tables_name_real_attributes() -> None:
    """A misspelt keyword would silently leave its attribute in place."""
    for table in (deid_module._ZERO, deid_module._REMOVE, deid_module._KEEP):
        unknown = sorted(k for k in table if k not in keyword_dict)
        assert not unknown, unknown
    assert not deid_module._ZERO & deid_module._REMOVE
    assert not deid_module._KEEP & (deid_module._ZERO | deid_module._REMOVE)
