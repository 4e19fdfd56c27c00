"""The quality gate: refuse, with a reason, what is not a frontal chest radiograph.

Checks that need only the image run before inference; the out-of-distribution check runs on the
model's features. Each refusal is a RejectedImage whose ``reason`` is a stable code.
"""

from __future__ import annotations

import numpy as np

from ..errors import RejectedImage
from ..imaging.xray import ImageMeta, XRay
from ..package import Population
from .prediction import OUTSIDE_POPULATION_FINDINGS, Finding

RADIOGRAPH_MODALITIES = {"CR", "DX"}
# Secondary Capture and "OT" are how many systems store screenshots of radiographs: allowed, with a note.
TOLERATED_MODALITIES = {"OT", "SC"}
CHEST_BODY_PARTS = {
    "CHEST",
    "THORAX",
    "LUNG",
    "LUNGS",
    "CHEST_LAT",
    "PORTABLE CHEST",
    "TORAX",
    "THORAX-CHEST",
}
LATERAL_VIEWS = {"LL", "RL", "LAT", "LATERAL", "LLD", "RLD"}
FRONTAL_VIEWS = {"PA", "AP", "APS", "PAS", ""}
MIN_CONTRAST_STD = 0.02
# Hasler-Süsstrunk colourfulness above which an input is a colour photo or screenshot, not a radiograph
# ("not colourful" is below ~15 on their scale; grey JPEGs with chroma noise stay under 2).
MAX_COLOURFULNESS = 15.0


def check_image(xray: XRay, min_side: int) -> tuple[Finding, ...]:
    """Refuse unreadable or non-chest inputs from the image and its metadata; return warnings."""
    meta = xray.meta
    findings: list[Finding] = []
    if meta.format == "dicom":
        modality = (meta.modality or "").upper()
        if modality and modality not in RADIOGRAPH_MODALITIES | TOLERATED_MODALITIES:
            raise RejectedImage(
                f"the DICOM modality is {modality}; only radiographs (CR, DX) are read", "not_radiograph"
            )
        if modality in TOLERATED_MODALITIES:
            findings.append(
                Finding("secondary_capture", f"modality {modality}: a capture, not an original radiograph")
            )
        if not modality:
            findings.append(Finding("no_modality", "the DICOM file does not say its modality"))
        body_part = (meta.body_part or "").upper().strip()
        if body_part and body_part not in CHEST_BODY_PARTS:
            raise RejectedImage(f"the body part examined is {body_part}, not the chest", "not_chest")
        if not body_part:
            findings.append(Finding("no_body_part", "the DICOM file does not say the body part", "info"))
        view = (meta.view_position or "").upper().strip()
        if view in LATERAL_VIEWS:
            raise RejectedImage(
                f"the view position is {view} (lateral); only frontal views are read", "lateral_view"
            )
        if view and view not in FRONTAL_VIEWS:
            findings.append(Finding("unusual_view", f"view position {view} is not PA or AP"))
    if meta.colourfulness is not None and meta.colourfulness > MAX_COLOURFULNESS:
        raise RejectedImage(
            f"the image is in colour (colourfulness {meta.colourfulness:.0f}); radiographs are grey",
            "colour_image",
        )
    height, width = xray.shape
    if min(height, width) < min_side:
        raise RejectedImage(
            f"the image is {width}x{height}; at least {min_side} pixels a side are needed", "too_small"
        )
    aspect = max(height, width) / min(height, width)
    if aspect > 2.5:
        raise RejectedImage(
            f"the image's aspect ratio {aspect:.1f} is not that of a chest radiograph", "bad_aspect"
        )
    if float(np.std(xray.pixels)) < MIN_CONTRAST_STD:
        raise RejectedImage("the image is blank or nearly constant", "blank_image")
    if min(height, width) < 224:
        findings.append(
            Finding("low_resolution", f"{width}x{height} is below the model's 224x224 input", "info")
        )
    return tuple(findings)


def check_distribution(ood_score: float, atypical_above: float, refuse_above: float) -> Finding | None:
    """Refuse far-out inputs; flag (and so refer) inputs outside the training population.

    Between the two thresholds sit inputs that are radiographs but unlike the training data (adults,
    other devices): the model still answers, but says it is on unfamiliar ground.
    """
    if ood_score > refuse_above:
        raise RejectedImage(
            f"the image does not look like the chest radiographs the model was trained on "
            f"(out-of-distribution score {ood_score:.1f} > {refuse_above:.1f})",
            "out_of_distribution",
        )
    if ood_score > atypical_above:
        return Finding(
            "atypical_input",
            f"unlike the training images (score {ood_score:.1f} > {atypical_above:.1f}): the model was trained on"
            " children aged 1-5; treat this result with extra caution",
        )
    return None


def intensity_summary(pixels: np.ndarray, side: int = 128) -> dict[str, float]:
    """Mean, spread and percentiles of the decoded [0, 1] pixels, on a strided subsample of at most
    ``side`` x ``side`` (a few hundred microseconds), for the production monitor's input statistics."""
    step = max(1, max(pixels.shape) // side)
    sample = pixels[::step, ::step].astype(np.float32, copy=False)
    p05, p50, p95 = np.percentile(sample, (5.0, 50.0, 95.0))
    return {
        "mean": float(sample.mean()),
        "std": float(sample.std()),
        "p05": float(p05),
        "p50": float(p50),
        "p95": float(p95),
    }


# Findings that make the Predictor refer whatever the conformal set says: the model is on ground its
# calibration never covered.
REFER_FINDINGS = OUTSIDE_POPULATION_FINDINGS


def check_population(meta: ImageMeta, population: Population) -> Finding | None:
    """Flag (and so refer) an input whose DICOM attributes fall outside the population the package
    declares it was made for. The answer is still given, below the flag: a clinician may want the
    heatmap, and a refusal would hide that the image was read at all. Raster images carry no such
    attributes; the out-of-distribution gate stands in for them."""
    reasons = []
    age = meta.patient_age_years
    if population.age_years is not None and age is not None:
        low, high = population.age_years
        if not low <= age < high:
            reasons.append(f"patient age {age:g} years is outside {low:g} to under {high:g} years")
    if population.modalities and meta.modality and meta.modality.upper() not in population.modalities:
        reasons.append(f"modality {meta.modality} is not one of {', '.join(population.modalities)}")
    view = (meta.view_position or "").upper()
    if population.views and view and view not in population.views:
        reasons.append(f"view {view} is not one of {', '.join(population.views)}")
    if not reasons:
        return None
    who = population.description or "the population this model was trained for"
    return Finding(
        "outside_intended_population",
        f"outside the population this model was trained for ({who}): {'; '.join(reasons)}. Refer.",
    )
