"""What the node accepts over the network: storage SOP classes and transfer syntaxes."""

from __future__ import annotations

from functools import lru_cache

from pydicom.pixels import get_decoder
from pydicom.uid import (
    JPEG2000,
    UID,
    ComputedRadiographyImageStorage,
    DeflatedExplicitVRLittleEndian,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
)
from pynetdicom import StoragePresentationContexts

VERIFICATION = UID("1.2.840.10008.1.1")  # C-ECHO

# The radiography classes a PACS or modality sends chest films as. Secondary Capture is here because
# many systems store (digitised or screenshot) radiographs that way; the quality gate notes it.
STORAGE_CLASSES: tuple[UID, ...] = (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    SecondaryCaptureImageStorage,
)

# Every other storage class pynetdicom knows. A PACS that routes whole studies sends CTs, reports
# and the like too; refusing them at association would fail the sender's whole transfer (and alarm
# its operators), so they are taken in and refused, each with its reason in the audit trail, by the
# same quality gate as every other door.
OTHER_STORAGE_CLASSES: tuple[UID, ...] = tuple(
    UID(str(cx.abstract_syntax))
    for cx in StoragePresentationContexts
    if cx.abstract_syntax and cx.abstract_syntax not in STORAGE_CLASSES
)

UNCOMPRESSED: tuple[UID, ...] = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)

_COMPRESSED_CANDIDATES: tuple[UID, ...] = (
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
)


@lru_cache(maxsize=1)
def accepted_transfer_syntaxes() -> tuple[UID, ...]:
    """Uncompressed syntaxes plus every compressed one an installed pixel decoder can read.

    Accepting a syntax we cannot decode would acknowledge an image only to refuse it later; a sender
    told "not accepted" at association can fall back to one we do read (storescu and most PACS do).
    """
    decodable = tuple(uid for uid in _COMPRESSED_CANDIDATES if get_decoder(uid).is_available)
    # Deflate is zlib, which pydicom reads without any plugin.
    return (*UNCOMPRESSED, DeflatedExplicitVRLittleEndian, *decodable)
