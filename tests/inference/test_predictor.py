"""The Predictor on the bundled model: real chest X-rays read, everything else refused with a reason."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxr_pneumonia.errors import InputError, RejectedImage
from cxr_pneumonia.imaging import load
from cxr_pneumonia.inference import Prediction, Predictor
from cxr_pneumonia.inference.cache import MemoryCache
from cxr_pneumonia.inference.heatmap import heatmap_png, overlay_png
from cxr_pneumonia.inference.quality import REFER_FINDINGS


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_reads_a_real_pneumonia_image(predictor: Predictor, kermany: Path) -> None:
    path = sorted((kermany / "test" / "PNEUMONIA").glob("person*_bacteria_*.jpeg"))[0]
    result = predictor.predict(path)
    assert result.label in ("normal", "pneumonia")
    assert 0.0 <= result.p_pneumonia <= 1.0
    assert result.p_bacterial + result.p_viral == pytest.approx(result.p_pneumonia)
    assert result.model.sha256 == predictor.package.manifest.onnx_sha256
    assert result.model.preprocess_version == predictor.spec.version
    assert result.input_sha256 == load(path).sha256
    assert result.heatmap is not None and result.heatmap.shape == (224, 224)
    assert float(result.heatmap.min()) >= 0.0 and float(result.heatmap.max()) <= 1.0
    assert "not a diagnosis" in result.disclaimer
    assert result.timings.total_ms > 0


def test_label_follows_the_threshold_and_refer_follows_the_conformal_set(
    predictor: Predictor, kermany: Path
) -> None:
    files = (
        sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[:10]
        + sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[:10]
    )
    for result in predictor.predict_batch(files):
        if not isinstance(result, Prediction):
            continue
        assert (result.label == "pneumonia") == (result.p_pneumonia >= result.threshold)
        # refer: the conformal set is not one class, or the input is outside the training population
        # (atypical, outside_intended_population), where the conformal guarantee does not hold
        outside = any(f.code in REFER_FINDINGS for f in result.findings)
        assert result.refer == (len(result.prediction_set) != 1 or outside)


def test_batch_equals_single(predictor: Predictor, kermany: Path) -> None:
    files = sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[:6]
    fresh = Predictor(predictor.package, cache=MemoryCache(0))
    batch = fresh.predict_batch(files, batch_size=4)
    for path, result in zip(files, batch, strict=True):
        single = fresh.predict(path, use_cache=False)
        assert isinstance(result, Prediction)
        assert result.p_pneumonia == pytest.approx(single.p_pneumonia, abs=1e-5)
        assert np.allclose(result.heatmap, single.heatmap, atol=1e-4)


def test_cache_returns_the_same_answer(predictor: Predictor, kermany: Path) -> None:
    path = sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[3]
    fresh = Predictor(predictor.package, cache=MemoryCache(8))
    first = fresh.predict(path)
    second = fresh.predict(path.read_bytes())
    assert not first.cached and second.cached
    assert second.p_pneumonia == first.p_pneumonia


def test_prediction_round_trips_through_a_dict(predictor: Predictor, kermany: Path) -> None:
    path = sorted((kermany / "test" / "PNEUMONIA").glob("*virus*.jpeg"))[0]
    result = predictor.predict(path)
    again = Prediction.from_dict(result.to_dict(include_heatmap=True))
    assert again.p_pneumonia == result.p_pneumonia and again.label == result.label
    assert np.allclose(again.heatmap, result.heatmap, atol=1 / 255)


def test_heatmap_renders(predictor: Predictor, kermany: Path) -> None:
    path = sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[1]
    result = predictor.predict(path)
    assert heatmap_png(result.heatmap).startswith(b"\x89PNG")
    overlay = Image.open(io.BytesIO(overlay_png(load(path), result.heatmap)))
    assert overlay.size == (224, 224) and overlay.mode == "RGB"


def test_real_dicom_chest_radiographs_are_read(
    predictor: Predictor, shared_dicom: Path, pydicom_data_file
) -> None:
    """Adult chest radiographs: read, but outside the pediatric training population, so flagged and referred."""
    for path in (
        shared_dicom / "cr-chest-monochrome2-jpeg-baseline.dcm",
        shared_dicom / "cr-chest-fake-monochrome1.dcm",
        pydicom_data_file("RG1_UNCR.dcm"),
    ):
        result = predictor.predict(path)
        assert result.input_meta["modality"] == "CR"
        if result.ood_score > result.ood_threshold:
            assert "atypical_input" in {f.code for f in result.findings}
            assert result.refer


def test_ct_and_mr_are_refused_by_modality(predictor: Predictor, pydicom_data_file) -> None:
    for name in ("CT_small.dcm", "MR_small.dcm"):
        with pytest.raises(RejectedImage) as info:
            predictor.predict(pydicom_data_file(name))
        assert info.value.reason == "not_radiograph"


def test_a_tibia_radiograph_is_refused(predictor: Predictor, pydicom_data_file) -> None:
    with pytest.raises(RejectedImage) as info:
        predictor.predict(pydicom_data_file("RG3_UNCR.dcm"))
    assert info.value.reason in ("not_chest", "out_of_distribution")


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket", "camera", "coins"])
def test_natural_photos_are_refused(predictor: Predictor, name: str) -> None:
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the natural photos")
    image = getattr(skimage_data, name)()
    with pytest.raises(RejectedImage) as info:
        predictor.predict(_png(image))
    assert info.value.reason in ("out_of_distribution", "colour_image")


def test_blank_and_tiny_images_are_refused(predictor: Predictor) -> None:
    with pytest.raises(RejectedImage) as info:
        predictor.predict(_png(np.full((512, 512), 128, dtype=np.uint8)))
    assert info.value.reason == "blank_image"
    with pytest.raises(RejectedImage) as info:
        predictor.predict(_png(np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)))
    assert info.value.reason == "too_small"


def test_unreadable_input_is_an_input_error(predictor: Predictor) -> None:
    with pytest.raises(InputError):
        predictor.predict(b"definitely not an image")


@pytest.mark.slow
def test_at_most_one_percent_of_the_kermany_test_split_is_refused(
    predictor: Predictor, kermany: Path
) -> None:
    files = sorted((kermany / "test").rglob("*.jpeg"))
    assert len(files) == 624
    results = Predictor(predictor.package, cache=MemoryCache(0)).predict_batch(files, heatmap=False)
    refused = [r for r in results if isinstance(r, RejectedImage)]
    failed = [r for r in results if not isinstance(r, Prediction | RejectedImage)]
    assert not failed
    assert len(refused) <= 0.01 * len(files), [r.reason for r in refused]
