"""ONNX Runtime session set-up and reading the linear head out of the served graph."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import ModelError
from ..models.head import linear_head


def open_session(onnx_path: Path, threads: int = 0) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads > 0:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle intra-op threads must sleep, not spin: the callers' own threads (decode, Grad-CAM, HTTP) need
    # the same few cores. Measured on 2 cores: single-image p50 24 -> 12 ms, API 8 clients 42 -> 50/s.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"ONNX Runtime cannot open {onnx_path.name}: {exc}") from exc
    names_in = [i.name for i in session.get_inputs()]
    names_out = {o.name for o in session.get_outputs()}
    if names_in != ["image"] or not {"logits", "features"} <= names_out:
        raise ModelError(
            f"model.onnx must take 'image' and give 'logits' and 'features'; it has {names_in} -> {names_out}"
        )
    return session


def head_weights(
    onnx_path: Path,
    channels: int,
    *,
    sha256: str | None = None,
    cache_dir: Path | None = None,
    refresh: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(W (classes, C), b (classes,)) of the Gemm that produces 'logits'. With ``sha256`` (of the
    verified model.onnx) and ``cache_dir``, read from a cached copy when there is one (unless
    ``refresh``) and cache what the graph gives otherwise; the Predictor's self-check then proves the
    head against the graph."""
    cached = cache_dir / f"head-{sha256}.npz" if cache_dir is not None and sha256 else None
    if cached is not None and not refresh:
        found = _read_cached(cached, channels)
        if found is not None:
            return found
    weight, bias = _head_from_graph(onnx_path, channels)
    if cached is not None:
        _write_cached(cached, weight, bias)
    return weight, bias


def _head_from_graph(onnx_path: Path, channels: int) -> tuple[np.ndarray, np.ndarray]:
    import onnx  # here, not at the top: importing it costs most of a CLI start (ml_dtypes)

    weight, bias = linear_head(onnx.load(str(onnx_path), load_external_data=False))
    if weight.shape[1] != channels:
        raise ModelError(f"the head has {weight.shape[1]} inputs, model.json says {channels}")
    return weight, bias


def _read_cached(path: Path, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached head, or None when it is absent, unreadable or of the wrong shape (then rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            weight, bias = data["weight"].astype(np.float64), data["bias"].astype(np.float64)
    except (OSError, ValueError, KeyError):
        return None
    if weight.ndim != 2 or weight.shape[1] != channels or bias.shape != (weight.shape[0],):
        return None
    return weight, bias


def _write_cached(path: Path, weight: np.ndarray, bias: np.ndarray) -> None:
    """Best effort: a read-only or full cache directory only costs the next start its onnx import."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            np.savez(out, weight=weight, bias=bias)
        os.replace(tmp, path)  # whole or not at all: a reader never sees half a file
    except OSError:
        return
