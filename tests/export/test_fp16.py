"""FP16 variant: FP16 inside, normalization and pixel I/O in FP32, measured overflow kept in FP32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from export.fp16 import convert_fp16, measure_peaks, pixel_io_nodes, plan_fp16
from export.gates import score_batch, summarize
from export.latency import cpu_session
from export.photos import batch_of, calibration_photos, evaluation_photos
from pastiche.contract import INPUT_NAME


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in (*inferred.graph.value_info, *inferred.graph.output)}
    types.update({vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.input})
    types.update({init.name: init.data_type for init in inferred.graph.initializer})
    return types


@pytest.fixture(scope="module")
def probe_images() -> list[np.ndarray]:
    return [batch_of([photo], 64) for photo in calibration_photos(2)]


@pytest.fixture(scope="module")
def converted(tiny_resnet_onnx: Path, probe_images: list[np.ndarray]) -> onnx.ModelProto:
    model = onnx.load(tiny_resnet_onnx)
    return convert_fp16(model, plan_fp16(model, probe_images))


def test_pixel_io_nodes_are_the_arithmetic_around_the_network(tiny_resnet_onnx: Path) -> None:
    model = onnx.load(tiny_resnet_onnx)
    kinds = {node.op_type for node in model.graph.node if node.name in pixel_io_nodes(model)}
    assert {"Transpose", "Cast", "Round", "Clip", "Tanh"} <= kinds
    assert not kinds & {"Conv", "ConvTranspose", "InstanceNormalization"}


def test_normalization_and_pixel_io_stay_fp32_while_convolutions_go_fp16(converted: onnx.ModelProto) -> None:
    types = _types(converted)
    norms = [n for n in converted.graph.node if n.op_type == "InstanceNormalization"]
    assert norms
    for node in norms:
        assert all(types[name] == TensorProto.FLOAT for name in node.input)
    for node in converted.graph.node:
        if node.op_type in ("Round", "Clip"):
            assert types[node.input[0]] == TensorProto.FLOAT
    conv_weights = [n.input[1] for n in converted.graph.node if n.op_type == "Conv"]
    assert any(types[w] == TensorProto.FLOAT16 for w in conv_weights)


def test_uint8_interface_is_unchanged(converted: onnx.ModelProto) -> None:
    assert converted.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert converted.graph.output[0].type.tensor_type.elem_type == TensorProto.UINT8


def test_fp16_output_stays_close_to_fp32(tiny_resnet_onnx: Path, converted: onnx.ModelProto, tmp_path: Path) -> None:
    path = tmp_path / "model.fp16.onnx"
    onnx.save(converted, path)
    images = batch_of(evaluation_photos(2), 64)
    reference = cpu_session(tiny_resnet_onnx).run(None, {INPUT_NAME: images})[0]
    candidate = cpu_session(path).run(None, {INPUT_NAME: images})[0]
    assert candidate.dtype == np.uint8
    assert summarize(score_batch(["a", "b"], reference, candidate), "psnr").min > 40


def test_peaks_are_measured_per_tensor(tiny_resnet_onnx: Path, probe_images: list[np.ndarray]) -> None:
    peaks = measure_peaks(onnx.load(tiny_resnet_onnx), probe_images)
    assert peaks
    # The tensor right before the uint8 cast holds output pixels: 0..255.
    assert 128 < max(peaks.values()) <= 255.0


def test_measured_hot_tensors_are_kept_in_fp32(tiny_resnet_onnx: Path, probe_images: list[np.ndarray]) -> None:
    model = onnx.load(tiny_resnet_onnx)
    assert plan_fp16(model, probe_images).overflow_nodes == ()
    # A limit below the measured activations marks them as overflow risks, and their producers stay FP32.
    plan = plan_fp16(model, probe_images, overflow_limit=0.5)
    assert plan.hot_tensors
    kept = {n.op_type for n in model.graph.node if n.name in plan.overflow_nodes}
    assert "Conv" in kept
    converted = convert_fp16(model, plan)
    types = _types(converted)
    kept_convs = [n for n in converted.graph.node if n.name in plan.overflow_nodes and n.op_type == "Conv"]
    assert kept_convs
    for node in kept_convs:
        assert all(types[name] == TensorProto.FLOAT for name in node.input)
