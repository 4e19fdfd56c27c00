"""The Secondary Capture: the radiograph with the heatmap and a short text banner burned in, for
viewers that cannot display a Structured Report."""

from __future__ import annotations

import numpy as np
from highdicom.sc import SCImage
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from ..imaging.xray import XRay
from ..inference.heatmap import overlay_rgb
from ..inference.prediction import Prediction
from .provenance import (
    CAPTURE_SERIES_NUMBER,
    MANUFACTURER,
    Provenance,
    copy_patient_study,
    evidence_header,
    source_reference,
)

STATEMENT = "AI decision support, not a diagnosis"
_BAND = (16, 16, 16)
_TEXT = (255, 255, 255)
_ALERT = (255, 210, 0)
MIN_WIDTH = 640
MIN_FONT = 10


def banner_lines(prediction: Prediction) -> list[str]:
    """The banner text, most important first (a narrow viewer may cut the last lines)."""
    if prediction.label == "pneumonia":
        subtype = f" ({prediction.subtype})" if prediction.subtype else ""
        verdict = (
            f"Pneumonia{subtype}: p = {prediction.p_pneumonia:.3f} (threshold {prediction.threshold:.3f})"
        )
    else:
        verdict = (
            f"No pneumonia detected: p(pneumonia) = {prediction.p_pneumonia:.3f} "
            f"(threshold {prediction.threshold:.3f})"
        )
    if not prediction.refer:
        refer = "Refer to a radiologist: no"
    elif any(f.code == "atypical_input" for f in prediction.findings):  # the Predictor's own reason code
        refer = "REFER TO A RADIOLOGIST: the image is unlike the model's training images"
    else:
        refer = "REFER TO A RADIOLOGIST: the model is unsure"
    model = prediction.model
    return [STATEMENT, verdict, refer, f"Model {model.name} {model.version}, sha256 {model.sha256[:16]}"]


def add_banner(rgb: np.ndarray, lines: list[str], *, alert_line: int | None = None) -> np.ndarray:
    """Put ``lines`` in a dark band above the image rather than over it, so nothing of the radiograph
    is hidden. Pillow's bundled default font (scalable since Pillow 10.1): no font files to ship."""
    image = Image.fromarray(rgb)
    if image.width < MIN_WIDTH:  # a 224-pixel capture would need an illegible font for the banner
        scale = MIN_WIDTH / image.width
        image = image.resize((MIN_WIDTH, round(image.height * scale)), Image.Resampling.LANCZOS)
    size, font = _fitting_font(lines, image.width)
    line_height = int(size * 1.35)
    band = line_height * len(lines) + size
    canvas = Image.new("RGB", (image.width, image.height + band), _BAND)
    canvas.paste(image, (0, band))
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(lines):
        colour = _ALERT if index == alert_line else _TEXT
        draw.text((size // 2, size // 2 + index * line_height), line, fill=colour, font=font)
    return np.asarray(canvas, dtype=np.uint8)


def _fitting_font(lines: list[str], width: int) -> tuple[int, ImageFont.FreeTypeFont | ImageFont.ImageFont]:
    """The largest font up to width/40 in which the longest line fits the width."""
    size = max(MIN_FONT, width // 40)
    while True:
        font = ImageFont.load_default(size=size)
        widest = max(font.getlength(line) for line in lines)
        if widest + size <= width or size <= MIN_FONT:
            return size, font
        size -= 1


def capture_image(
    source: Dataset, source_sha256: str, xray: XRay, prediction: Prediction, provenance: Provenance
) -> Dataset:
    """The Secondary Capture for an analysed radiograph, in the source's study, in its own series."""
    if prediction.heatmap is None:
        raise ValueError("a Secondary Capture needs a prediction made with its heatmap")
    lines = banner_lines(prediction)
    pixels = add_banner(
        overlay_rgb(xray, prediction.heatmap), lines, alert_line=2 if prediction.refer else None
    )
    header = evidence_header(source)
    series_uid, instance_uid = provenance.uids(source, source_sha256, "sc")
    orientation = _orientation(header)
    image = SCImage.from_ref_dataset(
        ref_dataset=header,
        pixel_array=pixels,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=series_uid,
        series_number=CAPTURE_SERIES_NUMBER,
        sop_instance_uid=instance_uid,
        instance_number=1,
        manufacturer=MANUFACTURER,
        # highdicom insists on an orientation for a PATIENT image; where the source does not state one,
        # a placeholder is given here and emptied below (Type 2C: empty means unknown) - never invented.
        patient_orientation=orientation or ("L", "F"),
        transfer_syntax_uid=ExplicitVRLittleEndian,
        contributing_equipment=[provenance.equipment()],
        series_description="AI pneumonia heatmap (decision support)",
    )
    if orientation is None:
        image.PatientOrientation = []  # present and empty
    image.BurnedInAnnotation = "YES"  # the banner is text in the pixels
    image.ImageComments = " | ".join(lines)
    image.DerivationDescription = (
        "Radiograph (VOI applied, grey, at most 1024 px a side) with a Grad-CAM heatmap of the pneumonia "
        "score blended in and a result banner above it"
    )
    image.SourceImageSequence = [source_reference(header)]
    provenance.stamp(image)
    copy_patient_study(source, image)
    return image


def _orientation(header: Dataset) -> tuple[str, str] | None:
    """The source's Patient Orientation if highdicom can take it (single letters; oblique ones can't)."""
    value = header.get("PatientOrientation")
    if value is None or isinstance(value, str) or len(value) != 2:
        return None
    row, column = (str(v).strip().upper() for v in value)
    allowed = {"A", "P", "R", "L", "H", "F"}
    if row in allowed and column in allowed:
        return row, column
    return None
