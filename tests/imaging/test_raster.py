"""PNG, JPEG, TIFF and friends: every mode becomes grey [0, 1] with its precision kept."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxr_pneumonia.imaging import ImageMeta, Limits, XRay, load

LIMITS = Limits()


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    return np.tile(np.linspace(0, 255, width).round().astype(np.uint8), (height, 1))


def test_png_8bit_grey_is_exact() -> None:
    grey = gradient()
    xray = load(encode(Image.fromarray(grey), "PNG"), LIMITS)
    np.testing.assert_array_equal(xray.pixels, grey.astype(np.float32) / 255.0)
    assert (xray.meta.format, xray.meta.bit_depth, xray.meta.width, xray.meta.height) == ("png", 8, 64, 48)


def test_png_16bit_keeps_16bit_precision() -> None:
    values = np.array([[0, 1, 2, 255, 256, 257, 1000, 32768, 65534, 65535]], dtype=np.uint16)
    xray = load(encode(Image.fromarray(values), "PNG"), LIMITS)
    assert xray.meta.bit_depth == 16
    np.testing.assert_allclose(xray.pixels, values / 65535.0, rtol=0, atol=1e-7)
    # Neighbouring 16-bit values stay distinct (an 8-bit detour would merge them).
    assert len(np.unique(xray.pixels)) == values.size


def test_png_16bit_dark_image_is_not_stretched() -> None:
    values = np.array([[0, 100, 200, 255]], dtype=np.uint16)
    xray = load(encode(Image.fromarray(values), "PNG"), LIMITS)
    np.testing.assert_allclose(xray.pixels, values / 65535.0, atol=1e-7)


def test_tiff_16bit_and_32bit_integer() -> None:
    values16 = np.array([[0, 4095, 65535]], dtype=np.uint16)
    tiff16 = load(encode(Image.fromarray(values16), "TIFF"), LIMITS)
    assert tiff16.meta.format == "tiff" and tiff16.meta.bit_depth == 16
    np.testing.assert_allclose(tiff16.pixels, values16 / 65535.0, atol=1e-7)
    # A 32-bit container has no intrinsic scale: its full range is used.
    values32 = np.array([[0, 100, 200]], dtype=np.int32)
    tiff32 = load(encode(Image.fromarray(values32), "TIFF"), LIMITS)
    np.testing.assert_allclose(tiff32.pixels, [[0.0, 0.5, 1.0]], atol=1e-7)


def test_tiff_float_with_nan_and_inf_stays_finite() -> None:
    values = np.array([[0.0, 1.0, 2.0, np.nan, np.inf, -np.inf]], dtype=np.float32)
    xray = load(encode(Image.fromarray(values), "TIFF"), LIMITS)
    assert np.isfinite(xray.pixels).all()
    np.testing.assert_allclose(xray.pixels[0, :3], [0.0, 0.5, 1.0], atol=1e-7)
    assert xray.pixels.min() >= 0.0 and xray.pixels.max() <= 1.0


def test_tiff_8bit_grey() -> None:
    grey = gradient()
    xray = load(encode(Image.fromarray(grey), "TIFF"), LIMITS)
    assert xray.meta.format == "tiff"
    np.testing.assert_array_equal(xray.pixels, grey / np.float32(255.0))


def test_rgb_uses_luma() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [90, 90, 90]]], dtype=np.uint8)
    xray = load(encode(Image.fromarray(rgb), "PNG"), LIMITS)
    # ITU-R 601-2 luma, as PIL computes it: L = R * 299/1000 + G * 587/1000 + B * 114/1000.
    np.testing.assert_allclose(xray.pixels[0] * 255.0, [76, 150, 29, 90], atol=0.51)


def test_grey_stored_as_rgb_equals_grey() -> None:
    grey = gradient()
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    from_rgb = load(encode(Image.fromarray(rgb), "PNG"), LIMITS)
    np.testing.assert_array_equal(from_rgb.pixels, grey / np.float32(255.0))


def test_rgba_transparency_is_flattened_onto_black() -> None:
    rgba = np.array(
        [[[255, 255, 255, 255], [255, 255, 255, 0], [255, 255, 255, 128], [0, 0, 0, 255]]], np.uint8
    )
    p = load(encode(Image.fromarray(rgba), "PNG"), LIMITS).pixels[0]
    assert p[0] == 1.0 and p[1] == 0.0 and p[3] == 0.0
    assert p[2] == pytest.approx(128 / 255, abs=1.5 / 255)


def test_palette_image() -> None:
    palette_image = Image.new("P", (3, 1))
    palette_image.putpalette([0, 0, 0, 255, 255, 255, 100, 100, 100])
    palette_image.putdata([0, 1, 2])
    p = load(encode(palette_image, "PNG"), LIMITS).pixels[0]
    np.testing.assert_allclose(p * 255, [0, 255, 100], atol=0.51)


def test_palette_transparency_is_flattened_onto_black() -> None:
    palette_image = Image.new("P", (2, 1))
    palette_image.putpalette([255, 255, 255, 200, 200, 200])
    palette_image.putdata([0, 1])
    p = load(encode(palette_image, "PNG", transparency=0), LIMITS).pixels[0]
    assert p[0] == 0.0  # the transparent white index
    assert p[1] == pytest.approx(200 / 255, abs=1 / 255)


def test_jpeg_is_close_to_the_original() -> None:
    grey = gradient(128, 96)
    xray = load(encode(Image.fromarray(grey), "JPEG", quality=95), LIMITS)
    assert xray.meta.format == "jpeg" and xray.meta.bit_depth == 8
    assert np.abs(xray.pixels * 255.0 - grey).mean() < 2.0


def test_exif_orientation_is_applied() -> None:
    # Stored 40 wide x 20 high, left half bright; orientation 6 means "rotate 90 degrees clockwise to
    # display", which puts the stored left side at the top of a 20 wide x 40 high image.
    stored = np.zeros((20, 40), dtype=np.uint8)
    stored[:, :20] = 255
    image = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(image, "JPEG", quality=95, exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).size == (40, 20)
    xray = load(data, LIMITS)
    assert xray.shape == (40, 20)
    assert (xray.meta.width, xray.meta.height) == (20, 40)
    assert xray.pixels[:20].mean() > 0.9 and xray.pixels[20:].mean() < 0.1


def test_kermany_jpeg(kermany: Path) -> None:
    path = next((kermany / "train" / "NORMAL").glob("*.jpeg"))
    xray = load(path, LIMITS)
    assert xray.meta.format == "jpeg" and xray.shape == (224, 224)
    assert 0.05 < xray.pixels.mean() < 0.95 and xray.pixels.std() > 0.05


def test_png_round_trip_of_an_xray_is_exact_at_8_bits() -> None:
    rng = np.random.default_rng(1)
    meta = ImageMeta(format="png", width=70, height=50, bit_depth=32)
    original = XRay(pixels=rng.random((50, 70), dtype=np.float32), meta=meta, sha256="0" * 64)
    eight_bit = original.to_uint8()
    again = load(encode(Image.fromarray(eight_bit), "PNG"), LIMITS)
    np.testing.assert_array_equal(again.pixels, eight_bit / np.float32(255.0))
    np.testing.assert_array_equal(again.to_uint8(), eight_bit)
    assert np.abs(again.pixels - original.pixels).max() <= 0.5 / 255 + 1e-6


def test_dicom_exported_to_png_round_trips(shared_dicom: Path) -> None:
    xray = load(shared_dicom / "cr-chest-monochrome2-jpeg-baseline.dcm", LIMITS)
    again = load(encode(Image.fromarray(xray.to_uint8()), "PNG"), LIMITS)
    np.testing.assert_array_equal(again.to_uint8(), xray.to_uint8())
    assert np.abs(again.pixels - xray.pixels).max() <= 0.5 / 255 + 1e-6


def test_bmp_and_gif_load() -> None:
    grey = gradient(16, 8)
    assert load(encode(Image.fromarray(grey), "BMP"), LIMITS).meta.format == "bmp"
    frames = [Image.fromarray(grey), Image.fromarray(255 - grey)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    gif = load(buffer.getvalue(), LIMITS)
    assert gif.meta.format == "gif" and gif.meta.frames == 2
    assert any("frames" in note for note in gif.meta.notes)


def test_one_bit_image() -> None:
    image = Image.fromarray(np.array([[0, 255, 0]], dtype=np.uint8)).convert("1")
    xray = load(encode(image, "PNG"), LIMITS)
    np.testing.assert_array_equal(xray.pixels, [[0.0, 1.0, 0.0]])
    assert xray.meta.bit_depth == 1
