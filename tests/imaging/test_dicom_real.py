"""The DICOM loader on real files: chest radiographs from ../shared/data and pydicom-data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from cxr_pneumonia.imaging import Limits, XRay, load

MONO2 = "cr-chest-monochrome2-jpeg-baseline.dcm"
FAKE_MONO1 = "cr-chest-fake-monochrome1.dcm"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
LIMITS = Limits()


def _check_xray(xray: XRay) -> None:
    assert xray.pixels.ndim == 2 and xray.pixels.dtype == np.float32
    assert np.isfinite(xray.pixels).all()
    assert xray.pixels.min() >= 0.0 and xray.pixels.max() <= 1.0


def test_fake_monochrome1_is_the_exact_inverse_of_monochrome2(shared_dicom: Path) -> None:
    mono2_path, mono1_path = shared_dicom / MONO2, shared_dicom / FAKE_MONO1
    # Precondition: the two files carry the same stored pixels, only the header differs.
    stored2 = pydicom.dcmread(mono2_path).pixel_array
    stored1 = pydicom.dcmread(mono1_path).pixel_array
    np.testing.assert_array_equal(stored1, stored2)

    mono2, mono1 = load(mono2_path, LIMITS), load(mono1_path, LIMITS)
    _check_xray(mono2)
    _check_xray(mono1)
    np.testing.assert_array_equal(mono1.pixels, 1.0 - mono2.pixels)
    assert mono2.pixels.std() > 0.1  # a real image, not a constant that inverts to itself
    assert mono2.meta.photometric == "MONOCHROME2" and mono1.meta.photometric == "MONOCHROME1"


@pytest.mark.parametrize("name", [MONO2, FAKE_MONO1])
def test_shared_dicom_metadata(shared_dicom: Path, name: str) -> None:
    xray = load(shared_dicom / name, LIMITS)
    meta = xray.meta
    assert meta.format == "dicom"
    assert (meta.width, meta.height) == (1024, 1024) == xray.shape
    assert (meta.modality, meta.body_part, meta.view_position) == ("CR", "CHEST", "PA")
    assert meta.transfer_syntax == JPEG_BASELINE
    assert meta.bit_depth == 8
    assert meta.frames == 1
    assert meta.pixel_spacing_mm == pytest.approx((0.168, 0.168))
    assert meta.sop_class_uid == "1.2.840.10008.5.1.4.1.1.7"


def test_shared_dicom_loads_the_same_from_bytes_and_path(shared_dicom: Path) -> None:
    path = shared_dicom / MONO2
    from_path, from_bytes = load(path, LIMITS), load(path.read_bytes(), LIMITS)
    np.testing.assert_array_equal(from_path.pixels, from_bytes.pixels)
    assert from_path.sha256 == from_bytes.sha256
    assert from_path.meta == from_bytes.meta


@pytest.fixture(scope="module")
def rg1_uncr(pydicom_data_file) -> XRay:
    return load(pydicom_data_file("RG1_UNCR.dcm"), LIMITS)


def test_rg1_metadata(rg1_uncr: XRay, pydicom_data_file) -> None:
    meta = rg1_uncr.meta
    assert (meta.width, meta.height) == (1841, 1955)
    assert (meta.modality, meta.body_part, meta.view_position) == ("CR", "CHEST", "PA")
    assert meta.photometric == "MONOCHROME1"
    assert meta.transfer_syntax == EXPLICIT_LE
    assert meta.bit_depth == 15
    # The file says PixelSpacing 0\0, which means "unknown", not "zero millimetres".
    assert [float(v) for v in pydicom.dcmread(pydicom_data_file("RG1_UNCR.dcm")).PixelSpacing] == [0.0, 0.0]
    assert meta.pixel_spacing_mm is None


def test_rg1_window_and_inversion_follow_the_standard(rg1_uncr: XRay, pydicom_data_file) -> None:
    """RG1 is MONOCHROME1, 15 bits, window 15000/30000. PS3.3 C.11.2.1.2.1 (LINEAR) gives
    ((x - (c - 0.5)) / (w - 1) + 0.5) for the VOI output in [0, 1]; MONOCHROME1 then inverts it."""
    ds = pydicom.dcmread(pydicom_data_file("RG1_UNCR.dcm"))
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (15000.0, 30000.0)
    stored = ds.pixel_array.astype(np.float64)
    voi = np.clip((stored - 14999.5) / 29999.0 + 0.5, 0.0, 1.0)
    np.testing.assert_allclose(rg1_uncr.pixels, 1.0 - voi, atol=1e-5)


def test_rg1_displays_lungs_dark_and_mediastinum_bright(rg1_uncr: XRay) -> None:
    p = rg1_uncr.pixels
    h, w = p.shape
    rows = slice(int(h * 0.30), int(h * 0.60))
    right_lung = p[rows, int(w * 0.20) : int(w * 0.38)].mean()
    left_lung = p[rows, int(w * 0.62) : int(w * 0.80)].mean()
    mediastinum = p[rows, int(w * 0.45) : int(w * 0.55)].mean()
    assert mediastinum > right_lung + 0.15
    assert mediastinum > left_lung + 0.15


def test_rg1_jpeg2000_lossless_decodes_identical(rg1_uncr: XRay, pydicom_data_file) -> None:
    j2kr = load(pydicom_data_file("RG1_J2KR.dcm"), LIMITS)
    assert j2kr.meta.transfer_syntax == J2K_LOSSLESS
    np.testing.assert_array_equal(j2kr.pixels, rg1_uncr.pixels)
    assert j2kr.sha256 != rg1_uncr.sha256  # different files, same image


def test_rg1_jpeg2000_lossy_is_close(rg1_uncr: XRay, pydicom_data_file) -> None:
    j2ki = load(pydicom_data_file("RG1_J2KI.dcm"), LIMITS)
    assert j2ki.meta.transfer_syntax == J2K
    _check_xray(j2ki)
    diff = np.abs(j2ki.pixels - rg1_uncr.pixels)
    assert diff.mean() < 0.005
    assert np.percentile(diff, 99.9) < 0.05
    assert not np.array_equal(j2ki.pixels, rg1_uncr.pixels)  # it really is lossy


@pytest.mark.parametrize(
    ("name", "modality", "shape"), [("CT_small.dcm", "CT", (128, 128)), ("MR_small.dcm", "MR", (64, 64))]
)
def test_pydicom_ct_and_mr_load_as_valid_images(name: str, modality: str, shape: tuple[int, int]) -> None:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom ships {name}"
    xray = load(path, LIMITS)
    _check_xray(xray)
    assert xray.shape == shape
    assert xray.meta.modality == modality
    assert xray.meta.body_part is None and xray.meta.view_position is None
    assert xray.pixels.std() > 0.05


def test_mr_window_maps_onto_unit_range() -> None:
    """MR_small: signed 16-bit, window 600/1600, no rescale: the standard's LINEAR formula."""
    path = get_testdata_file("MR_small.dcm")
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array.astype(np.float64)
    expected = np.clip((stored - 599.5) / 1599.0 + 0.5, 0.0, 1.0)
    np.testing.assert_allclose(load(path, LIMITS).pixels, expected, atol=1e-5)


def test_ct_without_window_uses_the_full_range_of_hounsfield_units() -> None:
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = (hu - hu.min()) / (hu.max() - hu.min())
    np.testing.assert_allclose(load(path, LIMITS).pixels, expected, atol=1e-5)
