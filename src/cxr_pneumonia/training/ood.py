"""What the package knows about its own population, fitted on the served graph: the Mahalanobis
reference of pooled features, the population gate (an in/out classifier), the heatmap scale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ..imaging import load
from ..imaging.preprocess import PreprocessSpec, to_model_input
from ..inference.heatmap import grad_cam, pneumonia_score_gradient
from ..package import OODReference, PopulationGate


def fit_ood_reference(train_pooled: np.ndarray, blocks: Sequence[int] = ()) -> OODReference:
    """Mean and Ledoit-Wolf shrunk covariance of the training features (full feature space: the
    directions the training set barely uses are exactly where photos and other body parts land).
    With ``blocks`` (an ensemble's member channel counts) one covariance per member's features."""
    x = np.asarray(train_pooled, dtype=np.float64)
    sizes = list(blocks) or [x.shape[1]]
    if sum(sizes) != x.shape[1]:
        raise ValueError(f"blocks {sizes} do not tile {x.shape[1]} features")
    edges = np.cumsum([0, *sizes])
    fits = [LedoitWolf().fit(x[:, a:b]) for a, b in pairwise(edges)]
    mean = np.concatenate([f.location_ for f in fits])
    if len(fits) == 1:
        return OODReference(mean=mean, precision=fits[0].precision_)
    return OODReference(mean=mean, precision=tuple(f.precision_ for f in fits))


def ood_threshold(reference: OODReference, val_pooled: np.ndarray, percentile: float = 99.5) -> float:
    return float(np.percentile(reference.distance(val_pooled), percentile))


def refuse_threshold(
    reference: OODReference,
    atypical_above: float,
    outliers_pooled: np.ndarray | None,
    *,
    factor: float,
    outlier_percentile: float = 0.0,
) -> float:
    """The OOD distance above which an input is refused: ``outlier_percentile`` of the fitted outliers'
    distances when both are given (never below ``atypical_above``), else ``factor`` x ``atypical_above``."""
    if outlier_percentile > 0 and outliers_pooled is not None and len(outliers_pooled):
        from_outliers = float(np.percentile(reference.distance(outliers_pooled), outlier_percentile))
        return max(atypical_above, from_outliers)
    return atypical_above * factor


def fit_population_gate(
    inside_pooled: np.ndarray, outside_pooled: np.ndarray, c: float = 0.01, threshold: float = 0.5
) -> PopulationGate:
    """Logistic regression (L2, balanced class weights) on standardised pooled features: the training
    images against radiographs of another population. Strong regularisation keeps it to the broad
    directions that tell the populations apart, not to single images."""
    x = np.concatenate([inside_pooled, outside_pooled]).astype(np.float64)
    y = np.r_[np.zeros(len(inside_pooled)), np.ones(len(outside_pooled))]
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(scaler.transform(x), y)
    return PopulationGate(
        mean=scaler.mean_,
        scale=np.where(scaler.scale_ > 0, scaler.scale_, 1.0),
        coef=model.coef_[0],
        intercept=float(model.intercept_[0]),
        threshold=threshold,
    )


@dataclass(frozen=True)
class ServedOutputs:
    logits: np.ndarray  # (N, 3)
    pooled: np.ndarray  # (N, C)
    cam_peaks: np.ndarray  # (N,) raw Grad-CAM peak for the pneumonia score


def served_outputs(
    onnx_path: Path, paths: Sequence[Path], spec: PreprocessSpec, channels: int, batch_size: int = 32
) -> ServedOutputs:
    """Outputs exactly as serving computes them: imaging.load -> float32 preprocessing -> the exported
    ONNX graph. The covariance is nearly singular in some directions, so statistics from any other path
    (float16 training caches, PyTorch instead of ONNX Runtime) would not transfer."""
    from ..inference.session import head_weights, open_session

    session = open_session(onnx_path)
    weight, _ = head_weights(onnx_path, channels)
    logits_all, pooled_all, peaks_all = [], [], []
    for start in range(0, len(paths), batch_size):
        batch = np.stack([to_model_input(load(p), spec) for p in paths[start : start + batch_size]])
        logits, features = session.run(["logits", "features"], {"image": batch})
        logits_all.append(logits)
        pooled_all.append(features.mean(axis=(2, 3)))
        cams = grad_cam(features, weight, pneumonia_score_gradient(logits.astype(np.float64)))
        peaks_all.append(cams.reshape(len(cams), -1).max(axis=1))
    if not paths:
        return ServedOutputs(np.empty((0, 3)), np.empty((0, channels)), np.empty(0))
    return ServedOutputs(np.concatenate(logits_all), np.concatenate(pooled_all), np.concatenate(peaks_all))


def heatmap_reference(cam_peaks: np.ndarray, percentile: float = 99.0) -> float:
    """The raw Grad-CAM value shown as full heat: a high percentile of the peaks on validation
    pneumonia cases, so a typical pneumonia map reaches warm colours and a normal one stays cool."""
    return float(np.percentile(cam_peaks, percentile))
