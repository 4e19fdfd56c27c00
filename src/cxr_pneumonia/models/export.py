"""Export the classifier to ONNX (outputs ``logits`` and ``features``) and check parity."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError
from .network import CXRNet

log = logging.getLogger(__name__)
PARITY_TOLERANCE = 1e-4


class _Exportable(torch.nn.Module):
    def __init__(self, model: CXRNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(image)


def export_onnx(model: CXRNet, path: Path, image_size: int, channels: int = 3, opset: int = 17) -> None:
    """Write ``model`` (in eval mode) as ONNX with a dynamic batch dimension."""
    model = model.eval()
    dummy = torch.zeros(2, channels, image_size, image_size)
    torch.onnx.export(
        _Exportable(model),
        (dummy,),
        str(path),
        input_names=["image"],
        output_names=["logits", "features"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
        opset_version=opset,
        dynamo=False,  # the TorchScript exporter gives a plain, fully static graph for this CNN
    )


def parity_check(model: CXRNet, onnx_path: Path, images: np.ndarray) -> float:
    """Max |logits_onnx - logits_torch| on real images; raises ModelError above the tolerance."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected, expected_features = model.eval()(torch.from_numpy(images))
    got, got_features = session.run(["logits", "features"], {"image": images.astype(np.float32)})
    diff = float(np.max(np.abs(got - expected.numpy())))
    feature_diff = float(np.max(np.abs(got_features - expected_features.numpy())))
    log.info("ONNX parity: max |logit diff| %.2e, max |feature diff| %.2e", diff, feature_diff)
    if diff >= PARITY_TOLERANCE:
        raise ModelError(f"ONNX export differs from PyTorch by {diff:.2e} (tolerance {PARITY_TOLERANCE})")
    return diff
