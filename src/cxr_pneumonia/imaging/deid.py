"""DICOM de-identification: PS3.15 Annex E, Basic Application Level Confidentiality Profile, with the
Retain Patient Characteristics Option limited to sex and age (what the model card's population needs).

pydicom 3 ships no profile, so the actions of Table E.1-1 are written out here, keyed by keyword, for
the attributes radiographs carry. Rules by value representation catch what a table can miss: every
person name, date, time and free text (LT/ST/UT) goes, every instance UID is replaced, and so do
private and unknown elements, curves and overlays. Burned-in text in the pixels is not cleaned (that
is the Clean Pixel Data Option): check ``BurnedInAnnotation`` before sharing pixels.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import uuid
from collections.abc import Callable
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

from .dicom import MAX_REPORTED_AGE, age_years, pixel_spacing_mm, text_value, transfer_syntax_uid

# LO: at most 64 characters; the code sequence below says the same in codes.
DEIDENTIFICATION_METHOD = "PS3.15 E.1 Basic Profile; Retain Patient Chars (sex, age only)"
# PS3.16 CID 7050 codes for what was done.
_METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113108", "Retain Patient Characteristics Option"),
)

# Z: Type 2 in the image IODs, so emptied rather than removed (the object stays valid).
_ZERO = frozenset(
    {
        "PatientName", "PatientID", "PatientBirthDate", "ReferringPhysicianName", "AccessionNumber",
        "StudyID", "StudyDate", "StudyTime", "ContentDate", "ContentTime",
    }
)  # fmt: skip

# X: removed. Names, dates, times and free text are also removed by VR (see _clean_element).
_REMOVE = frozenset(
    {
        # patient
        "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "IssuerOfPatientID",
        "PatientBirthName", "PatientMotherBirthName", "PatientBirthTime", "PatientAddress",
        "PatientTelephoneNumbers", "PatientTelecomInformation", "MedicalRecordLocator", "MilitaryRank",
        "BranchOfService", "EthnicGroup", "Occupation", "AdditionalPatientHistory", "PatientComments",
        "PatientState", "PregnancyStatus", "MedicalAlerts", "Allergies", "SmokingStatus",
        "LastMenstrualDate", "PatientReligiousPreference", "CountryOfResidence", "RegionOfResidence",
        "PatientInsurancePlanCodeSequence", "PatientPrimaryLanguageCodeSequence", "PatientSize",
        "PatientWeight", "PatientSexNeutered", "ResponsiblePerson", "ResponsibleOrganization",
        "ReferencedPatientSequence", "ReferencedPatientPhotoSequence", "ReferencedPatientAliasSequence",
        "InsurancePlanIdentification", "PatientInstitutionResidence", "SpecialNeeds",
        "PatientTransportArrangements", "ConfidentialityConstraintOnPatientDataDescription",
        # visit and request
        "AdmissionID", "IssuerOfAdmissionID", "IssuerOfAdmissionIDSequence", "AdmittingDiagnosesDescription",
        "AdmittingDiagnosesCodeSequence", "CurrentPatientLocation", "ServiceEpisodeID",
        "ServiceEpisodeDescription", "IssuerOfServiceEpisodeID", "VisitComments", "ReasonForVisit",
        "ReasonForVisitCodeSequence", "RequestAttributesSequence", "RequestedProcedureID",
        "RequestedProcedureDescription", "RequestedProcedureComments", "RequestedProcedureLocation",
        "ReasonForTheRequestedProcedure", "ReasonForRequestedProcedureCodeSequence", "ReasonForStudy",
        "RequestingPhysician", "RequestingService", "RequestedContrastAgent", "ImagingServiceRequestComments",
        "ReasonForTheImagingServiceRequest", "PlacerOrderNumberImagingServiceRequest",
        "FillerOrderNumberImagingServiceRequest", "OrderEnteredBy", "OrderEntererLocation",
        "OrderCallbackPhoneNumber", "OrderCallbackTelecomInformation", "ScheduledStudyLocation",
        "ScheduledStudyLocationAETitle", "StudyIDIssuer", "StudyComments",
        # study, series, procedure step
        "StudyDescription", "SeriesDescription", "ProtocolName", "ProcedureCodeSequence",
        "ReferencedStudySequence", "ReferencedPerformedProcedureStepSequence", "PerformedProcedureStepID",
        "PerformedProcedureStepDescription", "CommentsOnThePerformedProcedureStep", "PerformedLocation",
        "PerformedStationAETitle", "PerformedStationName", "PerformedStationNameCodeSequence",
        "PerformedStationGeographicLocationCodeSequence", "ScheduledProcedureStepID",
        "ScheduledProcedureStepDescription", "ScheduledProcedureStepLocation", "ScheduledStationAETitle",
        "ScheduledStationName", "ScheduledStationNameCodeSequence",
        "ScheduledStationGeographicLocationCodeSequence", "ScheduledHumanPerformersSequence",
        "ActualHumanPerformersSequence", "HumanPerformerOrganization", "PreMedication",
        "AcquisitionContextSequence", "RequestedSeriesDescription",
        # institution, staff and equipment
        "InstitutionName", "InstitutionAddress", "InstitutionCodeSequence", "InstitutionalDepartmentName",
        "InstitutionalDepartmentTypeCodeSequence", "StationName", "StationAETitle", "RetrieveAETitle",
        "NetworkID", "PhysiciansOfRecordIdentificationSequence", "PerformingPhysicianIdentificationSequence",
        "PhysiciansReadingStudyIdentificationSequence", "ReferringPhysicianIdentificationSequence",
        "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
        "ConsultingPhysicianIdentificationSequence", "OperatorIdentificationSequence",
        "PersonIdentificationCodeSequence", "PersonAddress", "PersonTelephoneNumbers",
        "PersonTelecomInformation", "IntendedRecipientsOfResultsIdentificationSequence",
        "DeviceSerialNumber", "DeviceUID", "DeviceDescription", "LongDeviceDescription",
        "UniqueDeviceIdentifier", "UDISequence", "PlateID", "CassetteID", "GantryID", "GeneratorID",
        "DetectorID", "ModifyingDeviceID", "SourceSerialNumber", "TransducerIdentificationSequence",
        "AcquisitionDeviceProcessingDescription", "ModifiedImageDescription",
        # free text and structured content that can hold anything
        "ImageComments", "FrameComments", "IdentifyingComments", "AcquisitionComments",
        "ImagePresentationComments", "DerivationDescription", "ContrastBolusAgent", "ContentSequence",
        "AuthorObserverSequence", "ParticipantSequence", "CustodialOrganizationSequence",
        "VerifyingObserverSequence", "VerifyingOrganization", "VerifyingObserverIdentificationCodeSequence",
        "TextString", "TextComments", "Impressions", "ResultsComments", "InterpretationText",
        "InterpretationDiagnosisDescription", "InterpretationID", "ResultsID", "GraphicAnnotationSequence",
        "IconImageSequence", "EncapsulatedDocument", "SpecimenAccessionNumber", "SlideIdentifier",
        "ContainerIdentifier", "SpecimenIdentifier",
        # clinical trial
        "ClinicalTrialSponsorName", "ClinicalTrialProtocolID", "ClinicalTrialProtocolName",
        "ClinicalTrialSiteID", "ClinicalTrialSiteName", "ClinicalTrialSubjectID",
        "ClinicalTrialSubjectReadingID", "ClinicalTrialTimePointID", "ClinicalTrialTimePointDescription",
        "ClinicalTrialCoordinatingCenterName", "ClinicalTrialSeriesID", "ClinicalTrialSeriesDescription",
        "ClinicalTrialProtocolEthicsCommitteeName", "ClinicalTrialProtocolEthicsCommitteeApprovalNumber",
        # provenance of earlier edits, signatures
        "OriginalAttributesSequence", "ModifiedAttributesSequence", "DigitalSignaturesSequence",
        "ReferencedDigitalSignatureSequence", "ReferencedSOPInstanceMACSequence", "MAC",
        "CertificateOfSigner", "DataSetTrailingPadding", "TimezoneOffsetFromUTC",
    }
)  # fmt: skip

# Kept as they are even where a VR rule would act: what the model and a DICOM node need.
_KEEP = frozenset(
    {
        "PatientSex", "PatientAge", "Modality", "BodyPartExamined", "ViewPosition", "ImageLaterality",
        "PhotometricInterpretation", "SamplesPerPixel", "Rows", "Columns", "BitsAllocated", "BitsStored",
        "HighBit", "PixelRepresentation", "PlanarConfiguration", "PixelAspectRatio", "NumberOfFrames",
        "PixelData", "FloatPixelData", "DoubleFloatPixelData", "PixelSpacing", "ImagerPixelSpacing",
        "RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth",
        "VOILUTFunction", "VOILUTSequence", "ModalityLUTSequence", "PresentationLUTShape",
        "SpecificCharacterSet", "ImageType", "SOPClassUID", "LossyImageCompression",
        "LossyImageCompressionRatio", "LossyImageCompressionMethod", "BurnedInAnnotation",
    }
)  # fmt: skip

# UI elements that name a kind of thing (a SOP class, a syntax, a coding scheme), not an instance:
# they identify nobody and must survive for the object to stay readable.
_CLASS_UID_SUFFIXES = ("ClassUID", "ClassUIDInFile", "TransferSyntaxUID", "TransferSyntaxUIDInFile")
_CLASS_UIDS = frozenset({"CodingSchemeUID", "MappingResourceUID", "ContextUID", "ImplementationClassUID"})
_STANDARD_UID_ROOT = "1.2.840.10008."  # UIDs defined by the DICOM standard itself

_REMOVE_BY_VR = frozenset({"PN", "DA", "DT", "TM", "LT", "ST", "UT"})


def deidentify(ds: Dataset, *, uid_salt: str) -> Dataset:
    """A de-identified deep copy of ``ds``; ``ds`` itself is not changed.

    Instance UIDs are replaced by ``2.25.<uuid>`` UIDs derived from an HMAC of the UID keyed with
    ``uid_salt``: the same UID maps to the same new UID within a deployment (so a study's images still
    share a study UID), and without the salt the originals cannot be recovered by hashing guesses.
    """
    if not uid_salt:
        raise ValueError("uid_salt must be a non-empty secret of this deployment")
    out = copy.deepcopy(ds)
    out.remove_private_tags()
    replace_uid = _uid_mapper(uid_salt)
    _clean_dataset(out, replace_uid)
    meta = getattr(out, "file_meta", None)
    if meta is not None:
        for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                        "ReceivingApplicationEntityTitle", "PrivateInformation",
                        "PrivateInformationCreatorUID"):  # fmt: skip
            meta.pop(keyword, None)
        if "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = replace_uid(str(meta.MediaStorageSOPInstanceUID))
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = DEIDENTIFICATION_METHOD
    out.DeidentificationMethodCodeSequence = Sequence(
        [_code(value, meaning) for value, meaning in _METHOD_CODES]
    )
    # Dates and times were removed, not shifted (PS3.3 C.7.1.1: REMOVED).
    out.LongitudinalTemporalInformationModified = "REMOVED"
    return out


def safe_metadata(ds: Dataset) -> dict[str, str | float | tuple[float, float] | None]:
    """The non-identifying fields, named and parsed exactly as :class:`ImageMeta`'s DICOM fields."""
    return {
        "modality": text_value(ds, "Modality"),
        "sop_class_uid": text_value(ds, "SOPClassUID"),
        "body_part": text_value(ds, "BodyPartExamined"),
        "view_position": text_value(ds, "ViewPosition"),
        "photometric": text_value(ds, "PhotometricInterpretation"),
        "transfer_syntax": transfer_syntax_uid(ds),
        "pixel_spacing_mm": pixel_spacing_mm(ds),
        "patient_age_years": age_years(ds),
        "patient_sex": text_value(ds, "PatientSex"),
    }


def pseudonymous_uid(uid: str, salt: str) -> UID:
    """The replacement for one UID. pydicom's generate_uid(prefix=None, ...) ignores its entropy
    sources and returns a random UUID, so the derivation is written out here (PS3.5 B.2)."""
    digest = hmac.new(salt.encode(), uid.strip("\x00 ").encode(), hashlib.sha256).digest()
    return UID(f"2.25.{uuid.UUID(bytes=digest[:16], version=4).int}")


def _uid_mapper(salt: str) -> Callable[[str], UID]:
    cache: dict[str, UID] = {}

    def replace(uid: str) -> UID:
        if uid not in cache:
            cache[uid] = pseudonymous_uid(uid, salt)
        return cache[uid]

    return replace


def _clean_dataset(ds: Dataset, replace_uid: Callable[[str], UID]) -> None:
    for elem in list(ds):
        action = _action(elem)
        if action == "remove":
            del ds[elem.tag]
        elif action == "zero":
            elem.value = elem.empty_value  # "" for text, None for numbers, [] for sequences
        elif action == "uid":
            elem.value = _map_uids(elem.value, replace_uid)
        elif action == "age":
            elem.value = _cap_age(str(elem.value))
        elif action == "recurse":
            for item in elem.value:
                _clean_dataset(item, replace_uid)


def _action(elem: DataElement) -> str:
    keyword = elem.keyword
    group = elem.tag.group
    if elem.tag.is_private:
        return "remove"  # remove_private_tags already did; kept for datasets nested oddly
    if 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:
        return "remove"  # curves, and overlays (which may carry burned-in-looking text)
    if keyword == "PatientAge":
        return "age"
    if keyword in _KEEP:
        return "keep"
    if keyword in _ZERO:
        return "zero"
    if keyword in _REMOVE or not keyword:
        return "remove"  # an element we cannot name, we cannot vouch for
    if elem.VR in _REMOVE_BY_VR:
        return "remove"
    if elem.VR == "UI":
        return "keep" if _is_class_uid(keyword) else "uid"
    if elem.VR == "SQ":
        return "recurse"
    return "keep"


def _is_class_uid(keyword: str) -> bool:
    return keyword in _CLASS_UIDS or keyword.endswith(_CLASS_UID_SUFFIXES)


def _map_uids(value: Any, replace_uid: Callable[[str], UID]) -> Any:
    def one(uid: Any) -> Any:
        text = str(uid).strip("\x00 ")
        return uid if not text or text.startswith(_STANDARD_UID_ROOT) else replace_uid(text)

    if isinstance(value, MultiValue | list | tuple):
        return [one(v) for v in value]
    return one(value) if value is not None else None


def _cap_age(raw: str) -> str:
    """Ages over 89 are reported as 090Y (HIPAA Safe Harbor); an unparseable age is dropped."""
    text = raw.strip().upper()
    if len(text) != 4 or not text[:3].isdigit() or text[3] not in "DWMY":
        return ""
    years = int(text[:3]) * {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}[text[3]]
    return f"{int(MAX_REPORTED_AGE):03d}Y" if years > MAX_REPORTED_AGE else text


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item
