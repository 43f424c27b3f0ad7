"""Wrap a generator into the served uint8 contract and export it to ONNX.

The graph owns all pixel handling: uint8 NHWC RGB in, the family's value range inside,
rounded and clamped uint8 NHWC RGB out. Clients never normalize.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import torch
from pydantic import BaseModel
from torch import Tensor, nn

from pastiche.contract import INPUT_NAME, OUTPUT_NAME, StyleMetadata

OPSET = 18


class ServedGenerator(nn.Module):
    """``uint8 [N,H,W,3]`` → generator in its own value range → ``uint8 [N,H,W,3]``."""

    def __init__(self, generator: nn.Module, value_range: tuple[float, float]) -> None:
        super().__init__()
        self.generator = generator
        low, high = value_range
        self.low = low
        self.scale = (high - low) / 255.0

    def forward(self, image: Tensor) -> Tensor:
        x = image.permute(0, 3, 1, 2).to(torch.float32) * self.scale + self.low
        y = self.generator(x)
        y = ((y - self.low) / self.scale).round().clamp(0.0, 255.0)
        return y.to(torch.uint8).permute(0, 2, 3, 1)


def export_onnx(
    generator: nn.Module,
    value_range: tuple[float, float],
    path: Path,
    metadata: StyleMetadata,
    sample_side: int = 64,
) -> Path:
    """Export ``generator`` with dynamic N, H, W and the style's metadata; returns ``path``."""
    served = ServedGenerator(generator.eval(), value_range).eval()
    side = max(sample_side, 2 * metadata.size_multiple)
    side -= side % metadata.size_multiple
    sample = torch.zeros((2, side, side, 3), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1)
    height, width = torch.export.Dim("rows", min=1), torch.export.Dim("cols", min=1)
    if metadata.size_multiple > 1:
        # H and W as multiples of the size multiple: the graph states the constraint in its input shape
        # ("256*rows"), and the exporter reasons about exact halvings instead of floor divisions.
        height, width = metadata.size_multiple * height, metadata.size_multiple * width
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        # The dynamo exporter is chatty about internals that do not affect the graph.
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(
            served,
            (sample,),
            dynamo=True,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"image": {0: batch, 1: height, 2: width}},
            external_data=False,
            verbose=False,
        )
    model = program.model_proto
    onnx.helper.set_model_props(model, metadata.to_onnx_metadata())
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def read_metadata(path: Path) -> StyleMetadata:
    """The :class:`StyleMetadata` stored in an exported ONNX file."""
    model = onnx.load(path, load_external_data=False)
    return StyleMetadata.from_onnx_metadata({p.key: p.value for p in model.metadata_props})


def torch_reference(generator: nn.Module, value_range: tuple[float, float], images: np.ndarray) -> np.ndarray:
    """Run the served wrapper in PyTorch on uint8 NHWC images: the parity reference."""
    served = ServedGenerator(generator.eval(), value_range).eval()
    with torch.no_grad():
        return served(torch.from_numpy(images)).numpy()


class GraphInfo(BaseModel):
    """What an exported graph is made of: opsets and operator counts."""

    opset: int
    opsets: dict[str, int]
    """Every imported operator set, by domain ("" is the default ONNX domain)."""
    ir_version: int
    operators: dict[str, int]
    """Operator type → number of nodes, sorted by name."""
    nodes: int
    parameters: int


def describe_graph(path: Path) -> GraphInfo:
    """Opset, operator list and parameter count of the ONNX model at ``path``."""
    model = onnx.load(path)
    opsets = {entry.domain: entry.version for entry in model.opset_import}
    operators = Counter(node.op_type for node in model.graph.node)
    parameters = sum(int(np.prod(init.dims)) for init in model.graph.initializer)
    return GraphInfo(
        opset=opsets.get("", opsets.get("ai.onnx", 0)),
        opsets=opsets,
        ir_version=model.ir_version,
        operators=dict(sorted(operators.items())),
        nodes=len(model.graph.node),
        parameters=parameters,
    )


def set_precision(model: onnx.ModelProto, precision: str) -> onnx.ModelProto:
    """Rewrite the model's Pastiche metadata to say ``precision`` (other keys unchanged)."""
    props = {p.key: p.value for p in model.metadata_props}
    metadata = dataclasses.replace(StyleMetadata.from_onnx_metadata(props), precision=precision)
    props.update(metadata.to_onnx_metadata())
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    return model
