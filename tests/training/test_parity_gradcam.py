"""The served ONNX graph equals the PyTorch model, and the served heatmap equals autograd Grad-CAM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="parity tests need the train extra (PyTorch)")

from cxr_pneumonia.imaging import load  # noqa: E402
from cxr_pneumonia.imaging.preprocess import to_model_input  # noqa: E402
from cxr_pneumonia.inference import Predictor  # noqa: E402
from cxr_pneumonia.inference.heatmap import grad_cam, pneumonia_score_gradient  # noqa: E402
from cxr_pneumonia.models.network import build_model  # noqa: E402


@pytest.fixture(scope="module")
def trained(tiny_run):
    model, _ = build_model(pretrained=False)
    state = torch.load(tiny_run.out_dir / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return model.eval(), Predictor.from_package(tiny_run.package_dir)


@pytest.fixture(scope="module")
def real_batch(kermany: Path, trained) -> np.ndarray:
    _, predictor = trained
    files = (
        sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[:3]
        + sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[:3]
    )
    return np.stack([to_model_input(load(f), predictor.spec) for f in files])


def test_onnx_logits_match_pytorch(trained, real_batch: np.ndarray) -> None:
    model, predictor = trained
    with torch.no_grad():
        expected, _ = model(torch.from_numpy(real_batch))
    got = predictor.run_model(real_batch).logits
    assert np.max(np.abs(got - expected.numpy())) < 1e-4


def test_served_cam_equals_autograd_grad_cam(trained, real_batch: np.ndarray) -> None:
    model, predictor = trained
    image = torch.from_numpy(real_batch)
    logits, features = model(image)
    features.retain_grad()
    # the pneumonia log-odds the served heatmap explains: log(p_b + p_v) - log(p_n)
    score = torch.logsumexp(logits[:, 1:], dim=1) - logits[:, 0]
    score.sum().backward()
    weights = features.grad.mean(dim=(2, 3), keepdim=True)  # Grad-CAM channel weights
    expected = torch.relu((weights * features).sum(dim=1)).detach().numpy()

    out = predictor.run_model(real_batch)
    served = grad_cam(out.features, predictor.head_weight, pneumonia_score_gradient(out.logits))
    scale = np.abs(expected).max()
    assert scale > 0
    assert np.max(np.abs(served - expected)) / scale < 1e-4
