"""Read the linear head (the Gemm that produces ``logits``) out of a served ONNX graph."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ModelError


def linear_head(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """(W (classes, C), b (classes,)) of ``model``'s (an onnx.ModelProto) Gemm producing 'logits'."""
    import onnx  # here, not at the top: importing it costs most of a CLI start (ml_dtypes)
    from onnx import numpy_helper

    initializers = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if "logits" in node.output and node.op_type == "Gemm":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float64)
            if not attrs.get("transB", 0):
                weight = weight.T
            weight = float(attrs.get("alpha", 1.0)) * weight
            return weight, numpy_helper.to_array(initializers[node.input[2]]).astype(np.float64)
    raise ModelError("model.onnx has no Gemm producing 'logits': its head cannot be read for heatmaps")
