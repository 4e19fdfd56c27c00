"""Heatmaps on one scale: with the package's reference, brightness means the same on every image, so
true normals show far less heat than true pneumonia (evaluation only: nothing here is fitted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cxr_pneumonia.inference import Prediction, Predictor
from cxr_pneumonia.inference.heatmap import grad_cam, pneumonia_score_gradient, scale_and_resize


def _mean_heat(predictor: Predictor, paths: list[Path]) -> list[float]:
    return [float(r.heatmap.mean()) for r in predictor.predict_batch(paths) if isinstance(r, Prediction)]


def test_normals_show_much_less_heat_than_pneumonia(predictor: Predictor, kermany: Path) -> None:
    reference = predictor.calibration.heatmap_reference
    assert reference is not None and reference > 0, "the bundled package has no heatmap scale"
    normals = sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[::6][:40]
    pneumonia = sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[::10][:40]
    heat_normal, heat_pneumonia = (
        np.mean(_mean_heat(predictor, normals)),
        np.mean(_mean_heat(predictor, pneumonia)),
    )
    # Measured with 2.0.0: 0.024 vs 0.171 (7x). The margin stated: at least 3x, and 0.08 apart.
    assert heat_pneumonia >= 3 * heat_normal, (heat_normal, heat_pneumonia)
    assert heat_pneumonia - heat_normal >= 0.08, (heat_normal, heat_pneumonia)


def test_each_prediction_keeps_its_raw_peak_and_the_scale(predictor: Predictor, kermany: Path) -> None:
    path = sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[0]
    result = predictor.predict(path, use_cache=False)
    assert result.heatmap_reference == predictor.calibration.heatmap_reference
    assert result.heatmap_peak is not None and result.heatmap_peak > 0
    expected = min(1.0, result.heatmap_peak / result.heatmap_reference)
    assert abs(float(result.heatmap.max()) - expected) < 0.05  # bilinear resizing softens the peak a little
    assert result.to_dict()["heatmap_peak"] == result.heatmap_peak


def test_scaling_by_a_reference_is_not_scaling_by_the_peak() -> None:
    rng = np.random.default_rng(0)
    features = rng.random((2, 4, 7, 7)).astype(np.float32)
    weight = rng.normal(size=(3, 4))
    cams = grad_cam(features, weight, pneumonia_score_gradient(rng.normal(size=(2, 3))))
    peak = float(cams[0].max())
    by_peak = scale_and_resize(cams[0], (7, 7), None)
    by_reference = scale_and_resize(cams[0], (7, 7), 4 * peak)
    assert abs(float(by_peak.max()) - 1.0) < 1e-3
    assert float(by_reference.max()) <= 0.26
