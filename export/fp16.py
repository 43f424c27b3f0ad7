"""FP16 variant of an exported FP32 ONNX model: FP16 inside, FP32 where precision needs it.

Kept in FP32:

- normalization layers (InstanceNorm/GroupNorm/BatchNorm/LayerNorm): their mean and variance
  over a whole feature map are the classic FP16 failure in style-transfer generators;
- the pixel I/O arithmetic before the first and after the last convolution (uint8 ↔ value
  range, rounding, clamping), so quantization to uint8 sees FP32 values;
- every node whose output was *measured* to exceed a magnitude limit on real photographs (and
  its consumers), because FP16 overflows at 65504.

uint8 inputs and outputs are unchanged. The conversion itself is onnxconverter-common's
``convert_float_to_float16`` with these node and op block lists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto
from onnxconverter_common.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

from pastiche.contract import INPUT_NAME

NORMALIZATION_OPS: tuple[str, ...] = (
    "InstanceNormalization",
    "GroupNormalization",
    "BatchNormalization",
    "LayerNormalization",
)
COMPUTE_OPS: tuple[str, ...] = ("Conv", "ConvTranspose")
OVERFLOW_LIMIT = 1.0e4
"""Measured |activation| above this stays FP32: FP16's largest finite value is 65504, and other inputs may run hotter."""


@dataclass(frozen=True)
class Fp16Plan:
    """Which parts of the graph stay FP32, and why."""

    kept_ops: tuple[str, ...]
    pixel_io_nodes: tuple[str, ...]
    overflow_nodes: tuple[str, ...]
    peak_activation: float
    """Largest |value| of any FP32 intermediate tensor seen while measuring."""
    hot_tensors: dict[str, float] = field(default_factory=dict)
    """Tensors whose measured peak exceeded the limit, with that peak."""


def name_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every node a unique name (block lists address nodes by name)."""
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)
    return model


def _graph_edges(graph: onnx.GraphProto) -> tuple[dict[str, list[int]], dict[str, int]]:
    consumers: dict[str, list[int]] = defaultdict(list)
    producer: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            consumers[name].append(index)
        for name in node.output:
            producer[name] = index
    return consumers, producer


def _reach(start: Iterable[int], step: dict[int, set[int]]) -> set[int]:
    seen: set[int] = set()
    frontier = list(start)
    while frontier:
        index = frontier.pop()
        for nxt in step.get(index, ()):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen


def pixel_io_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes before the first or after the last convolution: the uint8 ↔ float pixel arithmetic."""
    graph = model.graph
    _, producer = _graph_edges(graph)
    forward: dict[int, set[int]] = defaultdict(set)
    backward: dict[int, set[int]] = defaultdict(set)
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name in producer:
                forward[producer[name]].add(index)
                backward[index].add(producer[name])
    compute = [i for i, node in enumerate(graph.node) if node.op_type in COMPUTE_OPS]
    after_compute = _reach(compute, forward)
    before_compute = _reach(compute, backward)
    return [
        node.name
        for i, node in enumerate(graph.node)
        if node.op_type not in COMPUTE_OPS and (i not in after_compute or i not in before_compute)
    ]


def _float_outputs(model: onnx.ModelProto) -> list[str]:
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.value_info}
    types.update({vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.output})
    return [name for node in model.graph.node for name in node.output if types.get(name) == TensorProto.FLOAT]


def measure_peaks(model: onnx.ModelProto, images: Iterable[np.ndarray]) -> dict[str, float]:
    """Largest |value| of every FP32 intermediate tensor over ``images`` (uint8 NHWC batches)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = _float_outputs(probe)
    existing = {o.name for o in probe.graph.output}
    probe.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names if name not in existing
    )
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    peaks: dict[str, float] = {}
    for batch in images:
        for name, value in zip(outputs, session.run(outputs, {INPUT_NAME: batch}), strict=True):
            if name in names and value.size:
                peak = float(np.max(np.abs(value)))
                peaks[name] = max(peaks.get(name, 0.0), peak)
    return peaks


def plan_fp16(
    model: onnx.ModelProto,
    images: Iterable[np.ndarray],
    overflow_limit: float = OVERFLOW_LIMIT,
    extra_ops: Iterable[str] = (),
) -> Fp16Plan:
    """Decide what stays FP32: normalization ops, pixel I/O nodes, and measured overflow risks."""
    name_nodes(model)
    peaks = measure_peaks(model, images)
    hot = {name: peak for name, peak in peaks.items() if peak > overflow_limit}
    consumers, producer = _graph_edges(model.graph)
    overflow: set[str] = set()
    for name in hot:
        overflow.add(model.graph.node[producer[name]].name)
        overflow.update(model.graph.node[i].name for i in consumers.get(name, ()))
    return Fp16Plan(
        kept_ops=tuple(dict.fromkeys((*NORMALIZATION_OPS, *extra_ops))),
        pixel_io_nodes=tuple(pixel_io_nodes(model)),
        overflow_nodes=tuple(sorted(overflow)),
        peak_activation=max(peaks.values(), default=0.0),
        hot_tensors=hot,
    )


def convert_fp16(model: onnx.ModelProto, plan: Fp16Plan) -> onnx.ModelProto:
    """The FP16 model for ``plan``; metadata (precision aside) and uint8 I/O are preserved."""
    name_nodes(model)
    converted = convert_float_to_float16(
        model,
        keep_io_types=True,
        op_block_list=sorted({*DEFAULT_OP_BLOCK_LIST, *plan.kept_ops}),
        node_block_list=sorted({*plan.pixel_io_nodes, *plan.overflow_nodes}),
    )
    onnx.checker.check_model(converted)
    return converted


def export_fp16(
    source: Path,
    destination: Path,
    images: Iterable[np.ndarray],
    overflow_limit: float = OVERFLOW_LIMIT,
) -> Fp16Plan:
    """Write the FP16 variant of the FP32 model at ``source`` to ``destination``; returns its plan."""
    model = onnx.load(source)
    plan = plan_fp16(model, images, overflow_limit)
    converted = convert_fp16(model, plan)
    destination.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, destination)
    return plan
