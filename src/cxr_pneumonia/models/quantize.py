"""Static int8 quantization of a served graph (ONNX Runtime), keeping the contract the Predictor reads.

Full convolutions get int8 weights (per output channel) and uint8 activations, calibrated on real
preprocessed training images. Depthwise convolutions stay float unless asked: they are memory-bound,
so int8 buys little there (the ensemble graph: 14.9 against 14.3 ms), and they are where per-channel
int8 hurts MobileNet-style networks (its validation NLL: 0.396 with them float, 0.433 without). The head (the Gemm producing ``logits``), the pooling before it and an
ensemble's feature Concat stay float, so ``features`` is a float map and ``head(mean(features))``
still reproduces ``logits`` exactly: Grad-CAM stays exact. ``reduce_range`` uses 7-bit weights, which
avoids the int16 saturation of the u8s8 kernels on CPUs without VNNI (this machine's AVX2 EPYC).
Everything a package fits (temperature, threshold, OOD reference, gate, heatmap scale) must then be
fitted on the quantized graph, since its features and logits are not the float graph's.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FLOAT_OPS = ("Gemm", "ReduceMean", "Concat")  # the head and what feeds it stay float
CALIBRATIONS = ("minmax", "percentile", "entropy")  # how activation ranges are set from the images


def describe(calibration_method: str, depthwise: bool = False) -> str:
    return (
        "ONNX Runtime static quantization, QDQ: int8 weights per channel (7-bit range), uint8 activations, "
        f"{calibration_method} calibration; the head, its pooling, the feature Concat"
        + ("" if depthwise else " and the depthwise convolutions")
        + " stay float"
    )


def quantize_graph(
    float_path: Path,
    out_path: Path,
    calibration: Sequence[np.ndarray],
    method: str = "minmax",
    depthwise: bool = False,
) -> None:
    """Write the int8 version of ``float_path`` to ``out_path``; ``calibration`` holds (1, C, H, W)
    float32 model inputs (training images, preprocessed as served); ``method`` one of CALIBRATIONS
    (percentile: the 99.999th percentile of each activation, so rare outliers do not stretch its range)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._batches: Iterator[np.ndarray] = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {"image": batch.astype(np.float32)}

    if not calibration:
        raise ValueError("quantization needs calibration images")
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    if method not in methods:
        raise ValueError(f"unknown calibration method {method!r} (one of {', '.join(CALIBRATIONS)})")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_path), str(prepared))
        nodes = onnx.load(str(prepared), load_external_data=False).graph.node
        keep_float = [
            node.name
            for node in nodes
            if node.op_type in FLOAT_OPS or (not depthwise and _is_depthwise(node))
        ]
        if not all(keep_float):
            raise ValueError("every node the quantizer must leave float needs a name")
        quantize_static(
            str(prepared),
            str(out_path),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep_float,
            calibrate_method=methods[method],
        )


def _is_depthwise(node: Any) -> bool:
    """A grouped Conv (EfficientNet-Lite's depthwise convolutions have one group per channel)."""
    from onnx import helper

    groups = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "group"), 1)
    return bool(node.op_type == "Conv" and groups > 1)
