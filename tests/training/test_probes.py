"""The probes (training/probes.py: framing, proportions, grain, resolution) and score_rows' ``adjust`` hook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxr_pneumonia.data.catalog import scan
from cxr_pneumonia.imaging.xray import ImageMeta, XRay
from cxr_pneumonia.inference.predictor import Predictor
from cxr_pneumonia.training.evaluate import score_rows
from cxr_pneumonia.training.probes import centre_crop, grain, resolution, stretch


def _xray(height: int, width: int) -> XRay:
    pixels = np.arange(height * width, dtype=np.float32).reshape(height, width) / (height * width)
    return XRay(
        pixels=pixels, meta=ImageMeta(format="png", width=width, height=height, bit_depth=8), sha256="0" * 64
    )


def test_centre_crop_keeps_the_centred_share_of_the_area() -> None:
    xray = _xray(200, 100)
    framed = centre_crop(0.64)(xray)
    assert framed.pixels.shape == (160, 80)  # 0.8 of each side
    assert framed.pixels[0, 0] == xray.pixels[20, 10]
    assert framed.pixels.flags["C_CONTIGUOUS"]
    assert framed.meta == xray.meta
    assert centre_crop(1.0)(xray).pixels.shape == (200, 100)


@pytest.mark.parametrize("area", [0.0, -0.5, 1.5])
def test_centre_crop_refuses_a_share_outside_0_1(area: float) -> None:
    with pytest.raises(ValueError, match="share of the area"):
        centre_crop(area)


def test_score_rows_scores_the_adjusted_radiograph(kermany: Path, bundled_model_path: Path) -> None:
    manifest = scan(kermany, verify=False)
    rows = [r for r in manifest.rows if r.split == "train"][:4]
    predictor = Predictor.from_package(bundled_model_path)
    seen: list[tuple[int, int]] = []

    def record(xray: XRay) -> XRay:
        seen.append(xray.pixels.shape)
        return centre_crop(0.5)(xray)

    plain = score_rows(predictor, manifest, rows)
    framed = score_rows(predictor, manifest, rows, adjust=record)
    assert len(seen) == len(rows)
    assert [i.row.path for i in framed] == [i.row.path for i in plain]
    # the crop reaches the model: every image scores differently, and still scores
    for before, after in zip(plain, framed, strict=True):
        assert after.logits is not None and before.logits is not None
        assert not np.allclose(after.logits, before.logits)


def test_stretch_keeps_the_centred_share_of_one_axis() -> None:
    xray = _xray(100, 80)
    widened = stretch("width", 0.8)(xray)
    assert widened.pixels.shape == (100, 64)
    np.testing.assert_array_equal(widened.pixels, xray.pixels[:, 8:72])
    assert stretch("height", 0.5)(xray).pixels.shape == (50, 80)
    with pytest.raises(ValueError):
        stretch("depth", 0.8)
    with pytest.raises(ValueError):
        stretch("width", 0.0)


def test_grain_adds_seeded_noise_and_keeps_the_range() -> None:
    xray = _xray(100, 80)
    first, again = grain(0.04, seed=1)(xray), grain(0.04, seed=1)(xray)
    np.testing.assert_array_equal(first.pixels, again.pixels)
    inside = (xray.pixels > 0.2) & (xray.pixels < 0.8)
    assert float(np.std((first.pixels - xray.pixels)[inside])) == pytest.approx(0.04, rel=0.1)
    assert first.pixels.dtype == np.float32 and first.pixels.min() >= 0.0 and first.pixels.max() <= 1.0
    with pytest.raises(ValueError):
        grain(-0.1)


def test_resolution_keeps_the_size_and_removes_fine_detail() -> None:
    rng = np.random.default_rng(0)
    fine = _xray(200, 160)
    fine = XRay(
        pixels=rng.uniform(0.0, 1.0, (200, 160)).astype(np.float32), meta=fine.meta, sha256=fine.sha256
    )
    softened = resolution(50)(fine)
    assert softened.pixels.shape == (200, 160) and softened.pixels.dtype == np.float32
    # pixel noise averaged over 4x4 blocks: its spread falls by about four
    assert float(np.std(softened.pixels)) < 0.5 * float(np.std(fine.pixels))
    assert abs(float(np.mean(softened.pixels)) - float(np.mean(fine.pixels))) < 0.01
    assert resolution(400)(fine) is fine  # already coarser than asked: unchanged
    with pytest.raises(ValueError):
        resolution(4)
