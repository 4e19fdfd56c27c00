"""The Predictor's head cache: a second start reads the head without importing onnx (most of a CLI
start), a broken or altered cached head is read from the graph again, and heatmaps stay exact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxr_pneumonia.config import get_settings
from cxr_pneumonia.inference import Predictor
from cxr_pneumonia.package import ModelPackage

PROBE = (
    "import sys; from cxr_pneumonia.inference import Predictor; "
    "Predictor.from_package(sys.argv[1]); print('onnx' in sys.modules)"
)


def _start(model: Path, cache: Path) -> bool:
    """Open the Predictor in a fresh process; True when that process imported onnx."""
    env = {**os.environ, "CXR_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(model)], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1] == "True"


def test_a_second_start_reads_the_head_from_the_cache_without_onnx(
    bundled_model_path: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    assert _start(bundled_model_path, cache) is True  # the first start parses the graph
    sha = ModelPackage.open(bundled_model_path).manifest.onnx_sha256
    assert (cache / f"head-{sha}.npz").is_file()
    assert _start(bundled_model_path, cache) is False  # the next one needs no onnx at all


@pytest.mark.parametrize("damage", ["garbage", "altered"])
def test_a_broken_or_altered_cached_head_is_read_from_the_graph_again(
    bundled_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    monkeypatch.setenv("CXR_CACHE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        truth = Predictor.from_package(bundled_model_path)
        cached = tmp_path / f"head-{truth.package.manifest.onnx_sha256}.npz"
        if damage == "garbage":
            cached.write_bytes(b"not an npz")
        else:
            np.savez(cached, weight=truth.head_weight * 1.5, bias=truth.head_bias)
        again = Predictor.from_package(bundled_model_path)
        assert np.array_equal(again.head_weight, truth.head_weight)
        assert np.array_equal(again.head_bias, truth.head_bias)
        with np.load(cached) as data:  # re-cached from the graph
            assert np.array_equal(data["weight"], truth.head_weight)
    finally:
        get_settings.cache_clear()
