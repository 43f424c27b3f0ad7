"""The machine's ceiling: measured SGEMM GFLOP/s, and a model's FLOPs per image counted from its graph."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from pastiche.contract import INPUT_NAME

COUNTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def sgemm_gflops(size: int = 1024, seconds: float = 2.0, backend: str = "numpy") -> float:
    """Best FP32 matrix-multiply rate (GFLOP/s, 2·n³ per product) over ``seconds`` of repeats."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    if backend == "torch":
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)

        def multiply() -> None:
            torch.mm(ta, tb)
    else:
        def multiply() -> None:
            np.matmul(a, b)

    multiply()
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        multiply()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


@dataclass(frozen=True)
class GraphFlops:
    """FLOPs (multiply and add counted separately) per op type for one input shape."""

    total: float
    by_op: dict[str, float]
    counted_nodes: int


def _fix_input_shape(model: onnx.ModelProto, shape: tuple[int, ...]) -> None:
    for graph_input in model.graph.input:
        if graph_input.name == INPUT_NAME:
            dims = graph_input.type.tensor_type.shape.dim
            for dim, value in zip(dims, shape):
                dim.Clear()
                dim.dim_value = value


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    graph = model.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[info.name] = tuple(d.dim_value for d in dims)
    for initializer in graph.initializer:
        shapes[initializer.name] = tuple(initializer.dims)
    return shapes


def node_flops(op: str, inputs: list[tuple[int, ...] | None], output: tuple[int, ...] | None) -> float | None:
    """FLOPs of one node from its input and output shapes; None when a needed shape is unknown."""
    if op == "Conv":
        weight = inputs[1] if len(inputs) > 1 else None
        if weight is None or output is None:
            return None
        # every output element of every image: C_in/groups · kH · kW multiply-adds
        return 2.0 * output[0] * float(np.prod(output[2:])) * float(np.prod(weight))
    if op == "ConvTranspose":
        data, weight = inputs[0], inputs[1] if len(inputs) > 1 else None
        if data is None or weight is None:
            return None
        # every input element scatters C_out/groups · kH · kW multiply-adds
        return 2.0 * data[0] * float(np.prod(data[2:])) * float(np.prod(weight))
    if op in ("MatMul", "Gemm"):
        a, b = inputs[0], inputs[1] if len(inputs) > 1 else None
        if a is None or b is None or output is None:
            return None
        inner = a[-1] if op == "MatMul" else (a[-1] if a[-1] in b else a[0])
        return 2.0 * float(np.prod(output)) * inner
    return 0.0


def count_flops(onnx_path: Path, side: int, batch: int = 1) -> GraphFlops:
    """FLOPs of a served style for ``batch`` images of ``side`` x ``side`` (ONNX shape inference).

    Subgraphs (If/Loop bodies) are not descended into; style generators have none.
    """
    model = onnx.load(str(onnx_path))
    _fix_input_shape(model, (batch, side, side, 3))
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    shapes = _shapes(inferred)
    by_op: dict[str, float] = {}
    counted = 0
    for node in inferred.graph.node:
        if node.op_type not in COUNTED_OPS:
            continue
        flops = node_flops(node.op_type, [shapes.get(name) for name in node.input], shapes.get(node.output[0]))
        if flops is None:
            raise ValueError(f"shape inference left {node.op_type} node {node.name!r} without shapes; cannot count FLOPs")
        by_op[node.op_type] = by_op.get(node.op_type, 0.0) + flops
        counted += 1
    return GraphFlops(total=sum(by_op.values()), by_op=by_op, counted_nodes=counted)


def initializer_count(onnx_path: Path) -> int:
    """Number of weights in the graph (for the report's model description)."""
    model = onnx.load(str(onnx_path))
    return int(sum(numpy_helper.to_array(t).size for t in model.graph.initializer))
