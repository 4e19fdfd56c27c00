"""A pydicom decoder plugin for the JPEG family (baseline, extended 12-bit, lossless, JPEG-LS) over
imagecodecs (BSD-3-Clause: libjpeg-turbo and CharLS), so that the base install needs no GPL decoder
(pylibjpeg-libjpeg is GPL-3). The DICOM reader always asks for this plugin for these syntaxes, so a
radiograph decodes the same whatever else is installed.

Frames come back as stored: no colour transform (pydicom converts YBR to RGB itself if asked), one
sample after another (planar configuration 0), in 8- or 16-bit containers by the codestream precision.
"""

from __future__ import annotations

from typing import Any

from pydicom import uid
from pydicom.pixels import get_decoder

PLUGIN = "imagecodecs"
SYNTAXES = (
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLossless,
    uid.JPEGLosslessSV1,
    uid.JPEGLSLossless,
    uid.JPEGLSNearLossless,
)
DECODER_DEPENDENCIES = {syntax: ("imagecodecs>=2024.1",) for syntax in SYNTAXES}


def is_available(syntax: str) -> bool:
    if syntax not in SYNTAXES:
        return False
    try:
        import imagecodecs
    except ImportError:
        return False
    return bool(imagecodecs.JPEG8.available and imagecodecs.JPEGLS.available)


def _decode_frame(src: bytes, runner: Any) -> bytes:
    import imagecodecs

    if runner.transfer_syntax in uid.JPEGLSTransferSyntaxes:
        arr = imagecodecs.jpegls_decode(src)
    elif runner.samples_per_pixel == 3:
        # As stored: YCbCr stays YCbCr, and RGB stored without an Adobe marker is not "converted".
        space = "YCBCR" if str(runner.photometric_interpretation).startswith("YBR") else "RGB"
        arr = imagecodecs.jpeg8_decode(src, colorspace=space, outcolorspace=space)
    else:
        arr = imagecodecs.jpeg8_decode(src)
    runner.set_option("planar_configuration", 0)
    runner.set_option("bits_allocated", 8 * arr.dtype.itemsize)
    return bytes(arr.tobytes())


def register() -> None:
    """Add the plugin to pydicom's decoders (once)."""
    for syntax in SYNTAXES:
        decoder = get_decoder(syntax)
        if PLUGIN not in decoder.available_plugins and PLUGIN not in getattr(decoder, "_unavailable", {}):
            decoder.add_plugin(PLUGIN, (__name__, "_decode_frame"))


def available() -> bool:
    return all(is_available(syntax) for syntax in SYNTAXES)
