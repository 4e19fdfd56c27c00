"""Out-of-distribution reference: Mahalanobis distance of pooled features, fitted on train."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf

from ..imaging import load
from ..imaging.preprocess import PreprocessSpec, to_model_input
from ..package import OODReference


def fit_ood_reference(train_pooled: np.ndarray) -> OODReference:
    """Mean and Ledoit-Wolf shrunk covariance of the training features (full feature space: the
    directions the training set barely uses are exactly where photos and other body parts land)."""
    estimate = LedoitWolf().fit(np.asarray(train_pooled, dtype=np.float64))
    return OODReference(mean=estimate.location_, precision=estimate.precision_)


def ood_threshold(reference: OODReference, val_pooled: np.ndarray, percentile: float = 99.5) -> float:
    return float(np.percentile(reference.distance(val_pooled), percentile))


def served_pooled_features(
    onnx_path: Path, paths: Sequence[Path], spec: PreprocessSpec, batch_size: int = 32
) -> np.ndarray:
    """Pooled features exactly as serving computes them: imaging.load -> float32 preprocessing -> the
    exported ONNX graph. The covariance is nearly singular in some directions, so statistics from any
    other path (float16 training caches, PyTorch instead of ONNX Runtime) would not transfer."""
    from ..inference.session import open_session

    session = open_session(onnx_path)
    pooled = []
    for start in range(0, len(paths), batch_size):
        batch = np.stack([to_model_input(load(p), spec) for p in paths[start : start + batch_size]])
        (features,) = session.run(["features"], {"image": batch})
        pooled.append(features.mean(axis=(2, 3)))
    return np.concatenate(pooled)
