"""The JPEG family decodes through the permissive imagecodecs plugin (no GPL decoder in the base
install): every pydicom sample of the six JPEG transfer syntaxes, lossless ones bit-exact against
pylibjpeg-libjpeg where that is still installed, and the whole reader with libjpeg made unimportable."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import get_decoder

from cxr_pneumonia.imaging import jpeg_codecs, load
from cxr_pneumonia.imaging.dicom import transfer_syntax_uid
from cxr_pneumonia.imaging.limits import Limits

LOSSLESS = {pydicom.uid.JPEGLossless, pydicom.uid.JPEGLosslessSV1, pydicom.uid.JPEGLSLossless}


# pydicom's and pydicom-data's samples of the JPEG syntaxes (named: a glob would try to download more).
NAMES = (
    "JPEGLSNearLossless_08.dcm", "JPEGLSNearLossless_16.dcm", "SC_rgb_jls_lossy_sample.dcm",
    "SC_rgb_jls_lossy_line.dcm", "MR_small_jpeg_ls_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm",
    "SC_rgb_jpeg_gdcm.dcm", "JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "JPGExtended.dcm",
    "SC_rgb_jpeg.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_jpeg_app14_dcmd.dcm", "SC_rgb_small_odd_jpeg.dcm",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm", "SC_rgb_dcmtk_+eb+cy+s4.dcm", "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_jpeg_no_color_transform.dcm", "SC_jpeg_no_color_transform_2.dcm", "examples_ybr_color.dcm",
    "color3d_jpeg_baseline.dcm",
)  # fmt: skip


def _samples() -> list[str]:
    found = [get_testdata_file(name, download=False) for name in NAMES]
    return [str(path) for path in found if path is not None]


SAMPLES = _samples()


@pytest.fixture(scope="module")
def process14(shared_dicom: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The real shared chest film re-encoded as JPEG Lossless process 14 with predictor 6 (1.2.840.10008.
    1.2.4.57: pydicom's samples have none), and the pixels it must decode to."""
    import imagecodecs
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(shared_dicom / "cr-chest-monochrome2-jpeg-baseline.dcm")
    pixels = ds.pixel_array
    ds.PixelData = encapsulate([imagecodecs.jpeg8_encode(pixels, lossless=True, predictor=6)])
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGLossless
    path = tmp_path_factory.mktemp("jpeg") / "process14.dcm"
    ds.save_as(path)
    return path, pixels


def _decode(path: str, plugin: str) -> np.ndarray:
    ds = pydicom.dcmread(path)
    ds.pixel_array_options(decoding_plugin=plugin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ds.pixel_array


def test_every_jpeg_syntax_is_covered(process14: tuple[Path, np.ndarray]) -> None:
    syntaxes = {transfer_syntax_uid(pydicom.dcmread(p, stop_before_pixels=True)) for p in SAMPLES}
    assert syntaxes | {pydicom.uid.JPEGLossless} == set(jpeg_codecs.SYNTAXES) and jpeg_codecs.available()
    path, pixels = process14
    assert np.array_equal(_decode(str(path), jpeg_codecs.PLUGIN), pixels)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.rsplit("/", 1)[-1])
def test_imagecodecs_decodes_like_libjpeg(path: str) -> None:
    ours = _decode(path, jpeg_codecs.PLUGIN)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert ours.shape[:2] == (ds.Rows, ds.Columns) or ours.shape[1:3] == (ds.Rows, ds.Columns)
    if importlib.util.find_spec("libjpeg") is None:
        pytest.skip("pylibjpeg-libjpeg (the GPL reference) is not installed: decoded, not compared")
    try:
        reference = _decode(path, "pylibjpeg")
    except RuntimeError:
        pytest.skip("libjpeg cannot decode this sample either")
    assert ours.shape == reference.shape and ours.dtype == reference.dtype
    difference = np.abs(ours.astype(np.float64) - reference)
    if transfer_syntax_uid(ds) in LOSSLESS or "NearLossless" in path or "jls" in path:
        assert difference.max() == 0  # lossless and JPEG-LS: bit-exact
    else:
        assert difference.max() <= 5 and difference.mean() < 0.2  # lossy: IDCT rounding only


@pytest.fixture
def without_pylibjpeg() -> Iterator[None]:
    """pydicom's decoders as if pylibjpeg-libjpeg were not installed."""
    removed = []
    for syntax in jpeg_codecs.SYNTAXES:
        decoder = get_decoder(syntax)
        if "pylibjpeg" in decoder.available_plugins:
            decoder.remove_plugin("pylibjpeg")
            removed.append(decoder)
    yield
    for decoder in removed:
        decoder.add_plugin("pylibjpeg", ("pydicom.pixels.decoders.pylibjpeg", "_decode_frame"))


def test_the_reader_needs_no_libjpeg(
    without_pylibjpeg: None, process14: tuple[Path, np.ndarray], shared_dicom: Path
) -> None:
    """With pylibjpeg out of pydicom's choice, every JPEG syntax still loads through our reader."""
    names = ["JPGLosslessP14SV1_1s_1f_8b.dcm", "JPGExtended.dcm", "MR_small_jpeg_ls_lossless.dcm"]
    names += ["JPEGLSNearLossless_16.dcm"]
    paths = [p for p in SAMPLES if p.rsplit("/", 1)[-1] in names] + [str(process14[0])]
    paths.append(str(shared_dicom / "cr-chest-monochrome2-jpeg-baseline.dcm"))  # baseline, a real chest
    assert len(paths) == len(names) + 2
    for path in paths:
        xray = load(Path(path), Limits())
        assert xray.pixels.size > 0
