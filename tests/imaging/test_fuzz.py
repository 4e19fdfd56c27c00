"""Fuzz the loader: whatever bytes arrive, ``load`` returns a valid XRay or raises InputError.

Seeds are real files (both shared DICOMs, RG1_UNCR, a Kermany JPEG) and files built here (a 16-bit
PNG, an RLE DICOM, a DICOM with a VOI LUT), so mutations reach deep into every decoder.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from dicom_builders import build_dataset, to_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import RLELossless

from cxr_pneumonia.errors import InputError
from cxr_pneumonia.imaging import Limits, XRay, load

# Small enough that a mutated header cannot make a test allocate much; the 1024 x 1024 shared DICOMs
# still decode, RG1 (1841 x 1955) is refused on its header unless a mutation shrinks it.
LIMITS = Limits(max_bytes=16 * 1024 * 1024, max_pixels=1_100_000)
FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,  # no .hypothesis directory in the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAGIC = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"II*\x00",
    b"MM\x00*",
    b"GIF89a",
    b"BM",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"\x00" * 128 + b"DICM",
    b"\x02\x00\x00\x00UL\x04\x00",
    b"\x08\x00\x05\x00",
]


def check(data: bytes) -> None:
    try:
        xray = load(data, LIMITS)
    except InputError as exc:
        assert exc.code and exc.detail
        return
    assert isinstance(xray, XRay)
    assert xray.pixels.ndim == 2 and xray.pixels.dtype == np.float32 and xray.pixels.size > 0
    assert np.isfinite(xray.pixels).all()
    assert xray.pixels.min() >= 0.0 and xray.pixels.max() <= 1.0
    assert (xray.meta.height, xray.meta.width) == xray.shape


def _png16() -> bytes:
    values = (np.arange(48 * 32, dtype=np.uint32).reshape(48, 32) * 41).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG")
    return buffer.getvalue()


def _rle_dicom() -> bytes:
    stored = (np.arange(24 * 16, dtype=np.uint16).reshape(24, 16) * 9) % 4096
    ds = build_dataset(stored, bits_stored=12, WindowCenter=2048, WindowWidth=4096)
    ds.compress(RLELossless)
    return to_bytes(ds)


def _voi_lut_dicom() -> bytes:
    item = Dataset()
    item.LUTDescriptor = [256, 0, 12]
    item.add_new("LUTData", "OW", (np.arange(256, dtype="<u2") * 16).tobytes())
    stored = np.arange(16 * 16, dtype=np.uint16).reshape(16, 16)
    ds = build_dataset(stored, photometric="MONOCHROME1", VOILUTSequence=Sequence([item]), RescaleSlope=1,
                      RescaleIntercept=0)  # fmt: skip
    return to_bytes(ds)


@pytest.fixture(scope="module")
def seeds(shared_data: Path, pydicom_data_file) -> dict[str, bytes]:
    dicom_dir = shared_data / "dicom"
    kermany_jpeg = next((shared_data / "kermany" / "train" / "PNEUMONIA").glob("*.jpeg"))
    found = {
        "mono2": (dicom_dir / "cr-chest-monochrome2-jpeg-baseline.dcm").read_bytes(),
        "mono1": (dicom_dir / "cr-chest-fake-monochrome1.dcm").read_bytes(),
        "rg1": pydicom_data_file("RG1_UNCR.dcm").read_bytes(),
        "kermany": kermany_jpeg.read_bytes(),
        "png16": _png16(),
        "rle": _rle_dicom(),
        "voi_lut": _voi_lut_dicom(),
    }
    # Every seed is itself readable (RG1 only with the default limits): the fuzz starts from valid files.
    for name, data in found.items():
        load(data, Limits() if name == "rg1" else LIMITS)
    return found


@FUZZ
@given(prefix=st.sampled_from(MAGIC), body=st.binary(max_size=2048))
def test_random_bytes(prefix: bytes, body: bytes) -> None:
    check(prefix + body)


@FUZZ
@given(data=st.data())
def test_truncations(seeds: dict[str, bytes], data: st.DataObject) -> None:
    seed = seeds[data.draw(st.sampled_from(sorted(seeds)), label="seed")]
    # Mostly inside the headers, where a cut changes the most, sometimes anywhere.
    end = data.draw(st.integers(0, min(len(seed), 4096)) | st.integers(0, len(seed)), label="end")
    check(seed[:end])


@FUZZ
@given(data=st.data())
def test_byte_mutations(seeds: dict[str, bytes], data: st.DataObject) -> None:
    seed = bytearray(seeds[data.draw(st.sampled_from(sorted(seeds)), label="seed")])
    position = st.integers(0, min(len(seed), 2048) - 1) | st.integers(0, len(seed) - 1)
    edits = data.draw(
        st.lists(st.tuples(position, st.integers(0, 255)), min_size=1, max_size=16), label="edits"
    )
    for index, value in edits:
        seed[index] = value
    check(bytes(seed))


@FUZZ
@given(data=st.data())
def test_splices(seeds: dict[str, bytes], data: st.DataObject) -> None:
    """Delete, duplicate or overwrite a slice: shifts every offset and length after it."""
    seed = seeds[data.draw(st.sampled_from(sorted(seeds)), label="seed")]
    start = data.draw(st.integers(0, min(len(seed), 4096)), label="start")
    length = data.draw(st.integers(1, 512), label="length")
    how = data.draw(st.sampled_from(["delete", "duplicate", "overwrite"]), label="how")
    chunk = seed[start : start + length]
    if how == "delete":
        mutated = seed[:start] + seed[start + length :]
    elif how == "duplicate":
        mutated = seed[:start] + chunk + seed[start:]
    else:
        noise = data.draw(st.binary(min_size=len(chunk), max_size=len(chunk)), label="noise")
        mutated = seed[:start] + noise + seed[start + length :]
    check(mutated)
