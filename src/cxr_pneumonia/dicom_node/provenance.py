"""Who made a result and how its UIDs are chosen: shared by the SR and Secondary Capture builders."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID

from .. import __version__
from ..inference.prediction import ModelRef

MANUFACTURER = "CXR Pneumonia Detector"
SOFTWARE_NAME = "cxr-pneumonia"

# Result series numbers: high, so they sort after the modality's own series in a viewer.
SR_SERIES_NUMBER = 9901
CAPTURE_SERIES_NUMBER = 9902

# Patient and General Study / Patient Study attributes copied verbatim from the source, beyond the ones
# highdicom copies itself, so that a PACS files the results under the same patient and study.
_PATIENT_STUDY_KEYWORDS = (
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "OtherPatientIDsSequence",
    "PatientBirthTime",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "StudyDescription",
    "IssuerOfAccessionNumberSequence",
    "ProcedureCodeSequence",
)

# Type 2 attributes highdicom reads from the source unconditionally; a source may lack them.
_TYPE2_DEFAULTS = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


def derived_uid(*parts: str) -> UID:
    """A UID that is a pure function of ``parts`` (PS3.5 B.2, a UUID under 2.25).

    Re-analysing the same instance (after a crash between queueing results and removing the input)
    then produces results with the same UIDs, which a PACS treats as the same objects, not duplicates.
    pydicom's generate_uid(prefix=None) ignores its entropy sources, hence this.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return UID(f"2.25.{uuid.UUID(bytes=digest[:16], version=4).int}")


@dataclass(frozen=True)
class Provenance:
    """This software and the model that produced a result."""

    model: ModelRef
    software_version: str = __version__

    @property
    def model_name(self) -> str:
        return f"{self.model.name} {self.model.version}"[:64]  # LO

    @property
    def software_versions(self) -> list[str]:
        # LO values of at most 64 characters: a sha256 in hex is exactly 64, so it must not be the last
        # value, whose padding to an even length would make it 65.
        return [f"{SOFTWARE_NAME} {self.software_version}"[:64], self.model.sha256, self.model_name]

    def equipment(self) -> hd.ContributingEquipment:
        return hd.ContributingEquipment(
            manufacturer=MANUFACTURER,
            purpose_of_reference=codes.DCM.ProcessingEquipment,
            manufacturer_model_name=self.model_name,
            software_versions=self.software_versions,
            contribution_datetime=dt.datetime.now(dt.UTC),
            contribution_description=(
                f"AI decision support (not a diagnosis): pneumonia probability by model "
                f"{self.model.model_id}, sha256 {self.model.sha256}"
            ),
        )

    def uids(self, source: Dataset, source_sha256: str, kind: str) -> tuple[UID, UID]:
        """(series, instance) UIDs of one result kind ("sr", "sc", "refusal-sr") for one source.

        The series is shared by every result of that kind in the study from this model, so a study's
        AI results sit together; the instance also depends on the source's bytes, because distinct
        files can carry the same SOP Instance UID (two of the shared test files do).
        """
        study = str(source.StudyInstanceUID)
        series = derived_uid("series", kind, study, self.model.sha256)
        instance = derived_uid(
            "instance", kind, study, str(source.SOPInstanceUID), source_sha256, self.model.sha256
        )
        return series, instance

    def stamp(self, result: Dataset) -> None:
        """Name this software on the result itself (General Equipment module)."""
        result.Manufacturer = MANUFACTURER
        result.ManufacturerModelName = self.model_name
        result.SoftwareVersions = self.software_versions


# Person names are handed to highdicom empty and copied verbatim afterwards: highdicom checks their
# format and warns (and logs) with the name itself in the message, which must not reach a log.
_PERSON_NAMES = ("PatientName", "ReferringPhysicianName")


def evidence_header(source: Dataset) -> Dataset:
    """A copy of the source's header (no pixels, names blanked) for highdicom's reference/evidence."""
    header = Dataset()
    for element in source:
        if element.tag.group != 0x7FE0:  # pixel data lives in group 7FE0
            header.add(copy.deepcopy(element))  # copies: blanking names below must not touch the source
    for keyword in _TYPE2_DEFAULTS:
        if keyword not in header or keyword in _PERSON_NAMES:
            setattr(header, keyword, None)
    return header


def copy_patient_study(source: Dataset, result: Dataset) -> None:
    """Put the source's patient and study attributes on a result highdicom built from the evidence."""
    for keyword in _PERSON_NAMES:
        if keyword in source:
            result[keyword] = copy.deepcopy(source[keyword])
    for keyword in _PATIENT_STUDY_KEYWORDS:
        if keyword in source and keyword not in result:
            result[keyword] = copy.deepcopy(source[keyword])


def source_reference(source: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return item
