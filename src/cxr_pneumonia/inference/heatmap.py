"""Grad-CAM without autograd, and rendering it over the radiograph.

For logits ``l = W · mean_hw(A) + b`` and a score ``s(l)``, Grad-CAM's channel weights are
``alpha_k = mean_hw(ds/dA_k) = sum_c (ds/dl_c) W[c, k] / (h w)``, so the map
``ReLU(sum_k alpha_k A_k)`` needs only the feature map, the head and ds/dl — exact, no PyTorch.
The score here is the pneumonia log-odds ``log(p_bacterial + p_viral) - log(p_normal)``: the map shows
where the model saw evidence for pneumonia.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..imaging.xray import XRay


def pneumonia_score_gradient(logits: np.ndarray) -> np.ndarray:
    """d/dlogits of log(exp(l_b) + exp(l_v)) - l_n, for each row of (N, 3) logits."""
    l_sub = logits[:, 1:] - logits[:, 1:].max(axis=1, keepdims=True)
    weights = np.exp(l_sub)
    weights /= weights.sum(axis=1, keepdims=True)
    grad = np.zeros_like(logits)
    grad[:, 0] = -1.0
    grad[:, 1:] = weights
    return grad


def grad_cam(features: np.ndarray, head_weight: np.ndarray, score_grad: np.ndarray) -> np.ndarray:
    """Raw (un-normalised) Grad-CAM maps (N, h, w) from features (N, C, h, w)."""
    h, w = features.shape[2:]
    alpha = (score_grad @ head_weight) / (h * w)  # (N, C)
    n, c = alpha.shape
    cam = np.matmul(alpha[:, None, :], features.reshape(n, c, h * w)).reshape(n, h, w)
    return np.maximum(cam, 0.0)


def scale_and_resize(cam: np.ndarray, size: tuple[int, int], reference: float | None) -> np.ndarray:
    """Scale one raw (h, w) map to [0, 1] and resize it to ``size`` = (height, width).

    With the package's ``reference`` (a raw value that shows as full heat, the same for every image),
    brightness means the same thing on every radiograph: a normal one shows little or no heat. Without
    one (version 1 packages) the map is scaled by its own peak, so every map has a red spot somewhere.
    """
    scale = reference if reference is not None and reference > 0 else float(cam.max())
    unit = np.clip(cam / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(cam)
    return _resize_unit(unit, size)


def _resize_unit(unit: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    image = Image.fromarray(unit.astype(np.float32), mode="F")
    resized = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _jet(unit: np.ndarray) -> np.ndarray:
    """A perceptually ordered blue-cyan-yellow-red colour map, (H, W) [0,1] -> (H, W, 3) uint8."""
    stops = np.array(
        [[0, 0, 128], [0, 128, 255], [0, 230, 230], [255, 230, 0], [255, 64, 0], [200, 0, 0]],
        dtype=np.float32,
    )
    positions = np.linspace(0.0, 1.0, len(stops))
    rgb = np.stack([np.interp(unit, positions, stops[:, c]) for c in range(3)], axis=-1)
    return rgb.astype(np.uint8)


def overlay_rgb(xray: XRay, heatmap: np.ndarray, alpha: float = 0.45, max_side: int = 1024) -> np.ndarray:
    """The radiograph (grey) with the heatmap blended where it is warm, as (H, W, 3) uint8."""
    grey = Image.fromarray(xray.to_uint8())
    scale = min(1.0, max_side / max(grey.size))
    if scale < 1.0:
        grey = grey.resize(
            (max(1, int(grey.width * scale)), max(1, int(grey.height * scale))), Image.Resampling.LANCZOS
        )
    base = np.asarray(grey.convert("RGB"), dtype=np.float32)
    # The map is already on its package's scale: resizing must not rescale it to its own peak.
    heat = _resize_unit(heatmap, (grey.height, grey.width)) if heatmap.shape != base.shape[:2] else heatmap
    colour = _jet(heat).astype(np.float32)
    weight = (alpha * np.clip(heat * 1.5, 0.0, 1.0))[..., None]  # cold regions stay see-through
    return np.clip(base * (1.0 - weight) + colour * weight, 0, 255).astype(np.uint8)


def png_bytes(rgb_or_grey: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb_or_grey).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def heatmap_png(heatmap: np.ndarray) -> bytes:
    """The heatmap alone as a colour PNG."""
    return png_bytes(_jet(np.clip(heatmap, 0.0, 1.0)))


def overlay_png(xray: XRay, heatmap: np.ndarray, alpha: float = 0.45) -> bytes:
    return png_bytes(overlay_rgb(xray, heatmap, alpha))
