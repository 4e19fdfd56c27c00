"""Out-of-distribution reference: Mahalanobis distance of pooled features, fitted on train."""

from __future__ import annotations

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA

from ..package import OODReference


def fit_ood_reference(train_pooled: np.ndarray, components: int = 128, seed: int = 0) -> OODReference:
    """Mean and Ledoit-Wolf shrunk covariance of train features, in a PCA basis of ``components``
    dimensions (the full 1280x1280 precision would not fit the package size budget)."""
    features = np.asarray(train_pooled, dtype=np.float64)
    k = int(min(components, features.shape[0] - 1, features.shape[1]))
    pca = PCA(n_components=k, random_state=seed).fit(features)
    projected = (features - pca.mean_) @ pca.components_.T
    covariance = LedoitWolf().fit(projected)
    return OODReference(mean=pca.mean_, components=pca.components_, precision=covariance.precision_)


def ood_threshold(reference: OODReference, val_pooled: np.ndarray, percentile: float = 99.5) -> float:
    return float(np.percentile(reference.distance(val_pooled), percentile))
