"""INT8 QDQ variant: symmetric int8 with zero point 0, calibration methods, first/last layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.photos import calibration_photos
from export.quantize import (
    Calibration,
    PhotoCalibrationReader,
    QuantizeSettings,
    edge_convolutions,
    quantize_int8,
    zero_points_are_zero,
)
from pastiche.contract import INPUT_NAME


def _activation_scales(path: Path) -> dict[str, float]:
    model = onnx.load(path)
    initializers = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    return {
        node.input[0]: float(initializers[node.input[1]])
        for node in model.graph.node
        if node.op_type == "QuantizeLinear" and initializers[node.input[1]].size == 1
    }


def _quantized_weights(model: onnx.ModelProto) -> set[str]:
    dequantized = {node.output[0] for node in model.graph.node if node.op_type == "DequantizeLinear"}
    return {
        node.name
        for node in model.graph.node
        if node.op_type in ("Conv", "ConvTranspose") and node.input[1] in dequantized
    }


@pytest.fixture(scope="module")
def int8_model(tiny_resnet_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("int8") / "model.int8.onnx"
    quantize_int8(tiny_resnet_onnx, path, calibration_photos(2), QuantizeSettings(side=64))
    return path


def test_all_qdq_nodes_are_symmetric_int8(int8_model: Path) -> None:
    model = onnx.load(int8_model)
    assert sum(node.op_type == "QuantizeLinear" for node in model.graph.node) > 0
    assert zero_points_are_zero(model) == []
    zero_points = [init for init in model.graph.initializer if init.name.endswith("_zero_point")]
    assert zero_points and all(zp.data_type == TensorProto.INT8 for zp in zero_points)


def test_first_and_last_convolutions_stay_float_by_default(
    tiny_resnet_onnx: Path, int8_model: Path, tmp_path: Path
) -> None:
    edges = set(edge_convolutions(onnx.load(tiny_resnet_onnx)))
    assert len(edges) == 2
    quantized = _quantized_weights(onnx.load(int8_model))
    assert quantized and not quantized & edges
    everything = tmp_path / "edges.onnx"
    quantize_int8(tiny_resnet_onnx, everything, calibration_photos(2), QuantizeSettings(side=64, quantize_edges=True))
    assert edges <= _quantized_weights(onnx.load(everything))


def test_metadata_and_uint8_interface_survive(tiny_resnet_onnx: Path, int8_model: Path) -> None:
    source = {p.key: p.value for p in onnx.load(tiny_resnet_onnx).metadata_props}
    model = onnx.load(int8_model)
    assert {p.key: p.value for p in model.metadata_props} == source
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.UINT8


def test_calibration_methods_choose_different_ranges(tiny_resnet_onnx: Path, tmp_path: Path) -> None:
    scales = {}
    for method in (Calibration.MINMAX, Calibration.ENTROPY):
        path = tmp_path / f"{method}.onnx"
        cache = tmp_path / f"{method}.json"
        quantize_int8(
            tiny_resnet_onnx, path, calibration_photos(2), QuantizeSettings(side=64, calibration=method), cache
        )
        assert cache.is_file()
        scales[method] = _activation_scales(path)
    shared = scales[Calibration.MINMAX].keys() & scales[Calibration.ENTROPY].keys()
    assert shared
    # Entropy clips outliers, so its ranges are never wider than min-max and some are narrower.
    assert all(scales[Calibration.ENTROPY][k] <= scales[Calibration.MINMAX][k] * 1.0001 for k in shared)
    assert any(scales[Calibration.ENTROPY][k] < scales[Calibration.MINMAX][k] * 0.99 for k in shared)


def test_calibration_reader_feeds_each_photo_then_rewinds() -> None:
    reader = PhotoCalibrationReader(calibration_photos(3), 32)
    feeds = [reader.get_next() for _ in range(4)]
    assert [feed is None for feed in feeds] == [False, False, False, True]
    assert feeds[0][INPUT_NAME].shape == (1, 32, 32, 3) and feeds[0][INPUT_NAME].dtype == np.uint8
    reader.rewind()
    assert reader.get_next() is not None
    with pytest.raises(ValueError):
        PhotoCalibrationReader([], 32)


def test_nonzero_zero_point_is_detected() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.INT8, [1])
    scale = numpy_helper.from_array(np.array(0.1, dtype=np.float32), "scale")
    zero_point = numpy_helper.from_array(np.array(3, dtype=np.int8), "zp")
    node = helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["y"], name="q")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], [scale, zero_point]))
    assert zero_points_are_zero(model) == ["q"]


def test_convolution_outputs_can_stay_float(tiny_resnet_onnx: Path, int8_model: Path, tmp_path: Path) -> None:
    def quantized_outputs(model: onnx.ModelProto) -> int:
        consumers: dict[str, list[str]] = {}
        for node in model.graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node.op_type)
        convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
        return sum("QuantizeLinear" in consumers.get(n.output[0], []) for n in convs)

    assert quantized_outputs(onnx.load(int8_model)) > 0
    path = tmp_path / "float_outputs.onnx"
    summary = quantize_int8(
        tiny_resnet_onnx, path, calibration_photos(2), QuantizeSettings(side=64, quantize_outputs=False)
    )
    assert not summary.quantize_outputs
    model = onnx.load(path)
    assert quantized_outputs(model) == 0 and _quantized_weights(model)
