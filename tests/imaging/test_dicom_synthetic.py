"""The DICOM pixel pipeline on files built here with pydicom: one feature of the standard per test."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import RLELossless

from cxr_pneumonia.errors import InputError, TooLarge
from cxr_pneumonia.imaging import Limits, load

LIMITS = Limits()


def test_signed_pixels_with_rescale_use_the_full_modality_range(make_dataset, dicom_bytes) -> None:
    stored = np.array([[-1000, -10, 0], [10, 500, 1000]], dtype=np.int16)
    ds = make_dataset(stored, RescaleSlope=2, RescaleIntercept=-100)
    xray = load(dicom_bytes(ds), LIMITS)
    modality = stored.astype(np.float64) * 2 - 100
    expected = (modality - modality.min()) / (modality.max() - modality.min())
    np.testing.assert_allclose(xray.pixels, expected, atol=1e-6)
    assert xray.pixels[0, 0] == 0.0 and xray.pixels[1, 2] == 1.0  # negative stored values decoded as such


def test_window_centre_maps_to_half_and_clips_outside(make_dataset, dicom_bytes) -> None:
    # Centre 2000, width 1000: the window spans 1500..2500.
    stored = np.array([[0, 1000, 1499, 2000, 2250, 2501, 3000, 4000]], dtype=np.uint16)
    xray = load(dicom_bytes(make_dataset(stored, WindowCenter=2000, WindowWidth=1000)), LIMITS)
    p = xray.pixels[0]
    assert p[3] == pytest.approx(0.5, abs=1e-3)
    assert p[4] == pytest.approx(0.75, abs=2e-3)
    np.testing.assert_array_equal(p[:3], 0.0)
    np.testing.assert_array_equal(p[5:], 1.0)


def test_window_on_rescaled_signed_values(make_dataset, dicom_bytes) -> None:
    """The window is in modality units and pydicom's output range then depends on the rescale: the old
    code normalised by the stored range and put the window centre far from 0.5."""
    stored = np.array([[-100, 400, 500, 550, 1000]], dtype=np.int16)  # modality: 2 * s - 1000
    ds = make_dataset(stored, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=0, WindowWidth=400)
    p = load(dicom_bytes(ds), LIMITS).pixels[0]
    assert p[2] == pytest.approx(0.5, abs=2e-3)  # modality 0: the centre
    assert p[3] == pytest.approx(0.75, abs=3e-3)  # modality 100: a quarter width above
    assert p[0] == 0.0 and p[1] == 0.0  # -1200 and -200: at or below the window
    assert p[4] == 1.0  # 1000: above


def test_sigmoid_window(make_dataset, dicom_bytes) -> None:
    stored = np.array([[0, 100, 200]], dtype=np.uint16)
    ds = make_dataset(stored, WindowCenter=100, WindowWidth=50, VOILUTFunction="SIGMOID")
    p = load(dicom_bytes(ds), LIMITS).pixels[0]
    assert p[1] == pytest.approx(0.5, abs=1e-6)
    assert p[0] < 0.01 and p[2] > 0.99


def test_invalid_window_falls_back_to_full_range_with_a_note(make_dataset, dicom_bytes) -> None:
    stored = np.array([[10, 20, 30]], dtype=np.uint16)
    xray = load(dicom_bytes(make_dataset(stored, WindowCenter=20, WindowWidth=0)), LIMITS)
    np.testing.assert_allclose(xray.pixels[0], [0.0, 0.5, 1.0], atol=1e-6)
    assert any("window" in note for note in xray.meta.notes)


def _voi_lut(first_mapped: int, data: list[int], bits: int) -> Sequence:
    item = Dataset()
    item.LUTDescriptor = [len(data), first_mapped, bits]
    item.add_new("LUTData", "OW", np.asarray(data, dtype="<u2").tobytes())
    return Sequence([item])


def test_voi_lut_sequence_is_applied(make_dataset, dicom_bytes) -> None:
    # A 12-bit output LUT for inputs 100..355 that inverts them: 100 -> 4095 ... 355 -> 4095 - 255 * 16.
    lut = [4095 - 16 * i for i in range(256)]
    stored = np.array([[0, 100, 200, 355, 1000]], dtype=np.uint16)
    ds = make_dataset(stored, VOILUTSequence=_voi_lut(100, lut, 12))
    p = load(dicom_bytes(ds), LIMITS).pixels[0]
    expected = np.array([lut[0], lut[0], lut[100], lut[255], lut[255]]) / 4095.0
    np.testing.assert_allclose(p, expected, atol=1e-6)


def test_voi_lut_after_a_rescale_past_16_bits(make_dataset, dicom_bytes) -> None:
    """Modality values of 65536 and more index past the end of the LUT: the last entry, not a wrapped
    index (pydicom's uint16 index array would map 65636 to entry 100)."""
    lut = [i * 16 for i in range(256)]
    stored = np.array([[0, 50, 32768, 32818]], dtype=np.uint16)  # modality 2 * s: 0, 100, 65536, 65636
    ds = make_dataset(stored, RescaleSlope=2, RescaleIntercept=0, VOILUTSequence=_voi_lut(0, lut, 12))
    p = load(dicom_bytes(ds), LIMITS).pixels[0]
    np.testing.assert_allclose(p, np.array([lut[0], lut[100], lut[255], lut[255]]) / 4095.0, atol=1e-6)


def test_voi_lut_is_preferred_to_a_window(make_dataset, dicom_bytes) -> None:
    lut = [i * 16 for i in range(256)]
    stored = np.array([[0, 128, 255]], dtype=np.uint16)
    ds = make_dataset(stored, VOILUTSequence=_voi_lut(0, lut, 12), WindowCenter=5000, WindowWidth=10)
    np.testing.assert_allclose(load(dicom_bytes(ds), LIMITS).pixels[0], np.array(lut)[[0, 128, 255]] / 4095.0)


def test_empty_voi_lut_sequence_is_ignored(make_dataset, dicom_bytes) -> None:
    stored = np.array([[0, 50, 100]], dtype=np.uint16)
    ds = make_dataset(stored, VOILUTSequence=Sequence([]))
    np.testing.assert_allclose(load(dicom_bytes(ds), LIMITS).pixels[0], [0.0, 0.5, 1.0])


def test_12_bits_stored_in_16_allocated(make_dataset, dicom_bytes) -> None:
    # Bits above BitsStored are not part of the value (old files put overlays there).
    values = np.array([[0, 1024, 2048, 4095]], dtype=np.uint16)
    stored = values | np.uint16(0xF000)
    ds = make_dataset(stored, bits_stored=12, WindowCenter=2048, WindowWidth=4096)
    xray = load(dicom_bytes(ds), LIMITS)
    assert xray.meta.bit_depth == 12
    # The window's output range is that of 12 bits: 0..4095.
    expected = np.clip((values - 2047.5) / 4095.0 + 0.5, 0, 1)
    np.testing.assert_allclose(xray.pixels, expected, atol=1e-6)
    assert xray.pixels[0, 3] == pytest.approx(1.0, abs=1e-3)


def test_monochrome1_inverts_after_modality_lut_and_window(make_dataset, dicom_bytes) -> None:
    """Modality 2 * s + 100, window centre 300 width 200 (200..400), then inversion. Applying the
    window to stored values, or inverting first, gives different numbers for every pixel below."""
    stored = np.array([[0, 100, 150, 200]], dtype=np.uint16)
    ds = make_dataset(
        stored,
        photometric="MONOCHROME1",
        RescaleSlope=2,
        RescaleIntercept=100,
        WindowCenter=300,
        WindowWidth=200,
    )
    p = load(dicom_bytes(ds), LIMITS).pixels[0]
    modality = stored[0] * 2.0 + 100
    voi = np.clip((modality - 299.5) / 199.0 + 0.5, 0, 1)
    np.testing.assert_allclose(p, 1.0 - voi, atol=1e-6)
    assert p[0] == 1.0 and p[3] == 0.0 and p[1] == pytest.approx(0.5, abs=3e-3)


def test_file_without_preamble_loads(make_dataset, dicom_bytes) -> None:
    stored = np.arange(12, dtype=np.uint16).reshape(3, 4)
    data = dicom_bytes(make_dataset(stored))
    assert data[128:132] == b"DICM"
    without_preamble = data[132:]  # starts with the file meta group
    np.testing.assert_array_equal(load(without_preamble, LIMITS).pixels, load(data, LIMITS).pixels)


def test_raw_dataset_without_file_meta_loads(make_dataset) -> None:
    """A bare implicit VR little endian dataset (what some old systems write) has no transfer syntax
    element; the loader must use the encoding the parser found."""
    stored = np.arange(12, dtype=np.uint16).reshape(3, 4)
    ds = make_dataset(stored)
    del ds.file_meta
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, ds)
    xray = load(buffer.getvalue(), LIMITS)
    np.testing.assert_allclose(xray.pixels, stored / 11.0, atol=1e-6)
    assert xray.meta.format == "dicom" and xray.meta.modality == "CR"


def test_rle_lossless_decodes_like_uncompressed(make_dataset, dicom_bytes) -> None:
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 4096, size=(32, 48), dtype=np.uint16)
    plain = make_dataset(stored, bits_stored=12)
    rle = make_dataset(stored, bits_stored=12)
    rle.compress(RLELossless)
    assert len(rle.PixelData) != len(plain.PixelData)
    decoded = load(dicom_bytes(rle), LIMITS)
    assert decoded.meta.transfer_syntax == RLELossless
    np.testing.assert_array_equal(decoded.pixels, load(dicom_bytes(plain), LIMITS).pixels)


def test_colour_is_refused(make_dataset, dicom_bytes) -> None:
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    ds = make_dataset(rgb, photometric="RGB", SamplesPerPixel=3, PlanarConfiguration=0)
    with pytest.raises(InputError) as info:
        load(dicom_bytes(ds), LIMITS)
    assert info.value.code == "unsupported_photometric"


def test_multiframe_is_refused(make_dataset, dicom_bytes) -> None:
    frames = np.zeros((2, 4, 4), dtype=np.uint16)
    ds = make_dataset(frames[0], NumberOfFrames=2)
    ds.PixelData = frames.tobytes()
    with pytest.raises(InputError) as info:
        load(dicom_bytes(ds), LIMITS)
    assert info.value.code == "multiframe"


def test_no_pixel_data_is_refused(make_dataset, dicom_bytes) -> None:
    with pytest.raises(InputError) as info:
        load(dicom_bytes(make_dataset(None)), LIMITS)
    assert info.value.code == "no_pixel_data"


def test_huge_rows_and_columns_are_refused_before_decoding(make_dataset, dicom_bytes) -> None:
    # The header claims 60000 x 60000 but only 32 bytes of pixels follow: decoding would fail with
    # "corrupt" (or try to allocate 7 GB); the limit must trip first, on the header alone.
    ds = make_dataset(np.zeros((4, 4), dtype=np.uint16), Rows=60000, Columns=60000)
    with pytest.raises(TooLarge) as info:
        load(dicom_bytes(ds), LIMITS)
    assert info.value.code == "too_large"


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"PixelSpacing": [0, 0]}, None),
        ({"PixelSpacing": [0.2, 0.3]}, (0.2, 0.3)),
        ({"PixelSpacing": [-0.1, 0.1]}, None),
        ({"PixelSpacing": [0, 0], "ImagerPixelSpacing": [0.14, 0.14]}, (0.14, 0.14)),
        ({"ImagerPixelSpacing": [0.15, 0.16]}, (0.15, 0.16)),
        ({}, None),
    ],
)
def test_pixel_spacing(make_dataset, dicom_bytes, attributes: dict, expected) -> None:
    ds = make_dataset(np.zeros((2, 2), dtype=np.uint8), **attributes)
    spacing = load(dicom_bytes(ds), LIMITS).meta.pixel_spacing_mm
    assert spacing == (pytest.approx(expected) if expected else None)


@pytest.mark.parametrize(
    ("age", "years"), [("006M", 0.5), ("003Y", 3.0), ("014D", 0.04), ("095Y", 90.0), ("12", None), ("", None)]
)
@pytest.mark.filterwarnings("ignore:Invalid value for VR AS")  # "12" is invalid on purpose
def test_patient_age(make_dataset, dicom_bytes, age: str, years: float | None) -> None:
    ds = make_dataset(np.zeros((2, 2), dtype=np.uint8), PatientAge=age)
    assert load(dicom_bytes(ds), LIMITS).meta.patient_age_years == years


def test_loaded_metadata_carries_no_patient_identity(make_dataset, dicom_bytes) -> None:
    ds = make_dataset(np.zeros((2, 2), dtype=np.uint8), PatientBirthDate="20200101", PatientSex="F")
    meta = load(dicom_bytes(ds), LIMITS).meta.to_dict()
    text = repr(meta)
    for secret in ("Doe", "MRN-0001", "20200101"):
        assert secret not in text
    assert meta["patient_sex"] == "F"


def test_rle_data_that_makes_the_rust_decoder_panic_is_a_clean_input_error(make_dataset, dicom_bytes) -> None:
    """Found by the fuzz test: pylibjpeg-rle panics (pyo3 PanicException, a BaseException) when a
    segment offset in the RLE header points into the middle of the previous segment."""
    stored = (np.arange(24 * 16, dtype=np.uint16).reshape(24, 16) * 9) % 4096
    ds = make_dataset(stored, bits_stored=12)
    ds.compress(RLELossless)
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    assert frame[8] == 0x88  # the second segment's offset, low byte
    frame[8] = 0x7F
    ds.PixelData = encapsulate([bytes(frame)])
    with pytest.raises(InputError) as info:
        load(dicom_bytes(ds), LIMITS)
    assert info.value.code == "corrupt_image"
