"""Compose several served graphs into one ensemble graph with the same contract (ONNX only, no PyTorch).

Each member is ``backbone_i -> A_i -> mean_hw -> W_i · + b_i``. The mean of the members'
temperature-scaled logits is

    sum_i (W_i · mean_hw(A_i) + b_i) / (M T_i)  =  W · mean_hw(concat_i A_i) + b,
    with W = [W_1 / (M T_1), ..., W_M / (M T_M)] and b = sum_i b_i / (M T_i),

so the ensemble is again "backbone -> feature map -> mean -> one linear layer": its ``features`` are
the members' maps stacked on the channel axis and its head is one Gemm. Grad-CAM stays exact, the
Predictor, the heatmap and the OOD code read it like any package, and ONNX Runtime runs it as one graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .head import linear_head

INPUT, LOGITS, FEATURES = "image", "logits", "features"


@dataclass(frozen=True)
class Member:
    onnx_path: Path
    temperature: float  # the member's own fitted temperature: members are averaged on a calibrated scale


@dataclass(frozen=True)
class ComposedGraph:
    channels: tuple[int, ...]  # feature channels of each member, in order (they tile the ensemble's)
    feature_size: tuple[int, int]  # (h, w) of the feature map, the same for every member


def compose_ensemble(members: list[Member], out_path: Path) -> ComposedGraph:
    """Write the one-graph ensemble of ``members`` to ``out_path``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if len(members) < 2:
        raise ModelError("an ensemble needs at least two members")
    graphs = [onnx.load(str(m.onnx_path)) for m in members]
    opsets = {_default_opset(g) for g in graphs}
    if len(opsets) != 1:
        raise ModelError(f"the members use different ONNX opsets {sorted(opsets)}")
    nodes, initializers, weights, biases, channels, sizes = [], [], [], [], [], set()
    for i, (member, model) in enumerate(zip(members, graphs, strict=True)):
        prefix = f"m{i}_"
        weight, bias = linear_head(model)
        shape = _feature_shape(member.onnx_path)
        channels.append(shape[0])
        sizes.add(shape[1:])
        if weight.shape[1] != shape[0]:
            raise ModelError(
                f"member {i}: its head takes {weight.shape[1]} inputs, its features have {shape[0]}"
            )
        scale = 1.0 / (len(members) * member.temperature)
        weights.append(weight * scale)
        biases.append(bias * scale)
        kept = _ancestors(model.graph, FEATURES)
        used = {name for node in kept for name in node.input}
        for node in kept:
            renamed = onnx.NodeProto()
            renamed.CopyFrom(node)
            renamed.name = prefix + (node.name or node.op_type)
            renamed.input[:] = [_rename(x, prefix) for x in node.input]
            renamed.output[:] = [_rename(x, prefix) for x in node.output]
            nodes.append(renamed)
        for init in model.graph.initializer:
            if init.name in used:
                copy = onnx.TensorProto()
                copy.CopyFrom(init)
                copy.name = prefix + init.name
                initializers.append(copy)
    if len(sizes) != 1:
        raise ModelError(f"the members' feature maps differ in size {sorted(sizes)}: they cannot be stacked")
    (h, w) = sizes.pop()
    total = sum(channels)
    initializers += [
        numpy_helper.from_array(np.concatenate(weights, axis=1).astype(np.float32), "ensemble_head_weight"),
        numpy_helper.from_array(np.sum(biases, axis=0).astype(np.float32), "ensemble_head_bias"),
    ]
    nodes += [
        helper.make_node(
            "Concat", [f"m{i}_{FEATURES}" for i in range(len(members))], [FEATURES], "ensemble_concat", axis=1
        ),
        helper.make_node(
            "ReduceMean", [FEATURES], ["ensemble_pooled"], "ensemble_pool", axes=[2, 3], keepdims=0
        ),
        helper.make_node(
            "Gemm",
            ["ensemble_pooled", "ensemble_head_weight", "ensemble_head_bias"],
            [LOGITS],
            "ensemble_head",
            transB=1,
        ),
    ]
    image = graphs[0].graph.input[0]
    classes = weights[0].shape[0]
    graph = helper.make_graph(
        nodes,
        "cxr_ensemble",
        [image],
        [
            helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["batch", classes]),
            helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["batch", total, h, w]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opsets.pop())])
    model.ir_version = graphs[0].ir_version
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
    return ComposedGraph(tuple(channels), (h, w))


def _rename(name: str, prefix: str) -> str:
    return name if name in ("", INPUT) else prefix + name


def _default_opset(model: Any) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _ancestors(graph: Any, output: str) -> list[Any]:
    """The nodes ``output`` depends on, in the graph's (topological) order."""
    producer = {out: node for node in graph.node for out in node.output}
    needed, stack = set(), [output]
    while stack:
        name = stack.pop()
        node = producer.get(name)
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        stack.extend(node.input)
    return [node for node in graph.node if id(node) in needed]


def _feature_shape(onnx_path: Path) -> tuple[int, int, int]:
    """(C, h, w) of the member's 'features', from one run on a blank image (the exported graph's
    declared output shape names its spatial axes symbolically, so it cannot be read statically)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    dims = session.get_inputs()[0].shape[1:]
    if not all(isinstance(d, int) and d > 0 for d in dims):
        raise ModelError(f"a member's input shape {dims} is not static after the batch axis")
    (features,) = session.run([FEATURES], {INPUT: np.zeros((1, *dims), dtype=np.float32)})
    if features.ndim != 4:
        raise ModelError(f"a member's 'features' have shape {features.shape}, not (N, C, h, w)")
    return int(features.shape[1]), int(features.shape[2]), int(features.shape[3])
