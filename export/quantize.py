"""INT8 variant of an exported FP32 ONNX model: QDQ format, symmetric, calibrated on real photographs.

onnxruntime's static quantization inserts QuantizeLinear/DequantizeLinear pairs around the
convolutions (weights per output channel, activations per tensor), both signed INT8 with zero
point 0 — the only Q/DQ form TensorRT accepts — and biases left in float for the same reason.
The pixel I/O arithmetic never gets Q/DQ nodes. By default the first and last convolutions stay
in float too: they see the image itself, cost a few percent of the compute, and dominate the
visible error when quantized.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
from onnxruntime.quantization.shape_inference import quant_pre_process

from export.fp16 import COMPUTE_OPS, name_nodes, pixel_io_nodes
from export.photos import Photo, batch_of
from pastiche.contract import INPUT_NAME


class Calibration(StrEnum):
    """How activation ranges are chosen from the calibration data."""

    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"

    @property
    def method(self) -> CalibrationMethod:
        """The onnxruntime calibration method."""
        return {
            Calibration.MINMAX: CalibrationMethod.MinMax,
            Calibration.ENTROPY: CalibrationMethod.Entropy,
            Calibration.PERCENTILE: CalibrationMethod.Percentile,
        }[self]


@dataclass(frozen=True)
class QuantizeSettings:
    """Choices for the INT8 variant."""

    calibration: Calibration = Calibration.PERCENTILE
    percentile: float = 99.999
    """Used by the percentile method only."""
    histogram_bins: int = 512
    """Histogram resolution of the entropy and percentile methods."""
    side: int = 256
    """Calibration images are fitted to ``side`` x ``side``."""
    per_channel: bool = True
    quantize_edges: bool = False
    """Also quantize the first and last convolutions (faster, visibly worse)."""
    quantize_outputs: bool = True
    """Q/DQ on convolution outputs too. ONNX Runtime's CPU int8 kernels need it (without it the
    convolutions run in float); leaving outputs in float removes one rounding per layer (fewer dB lost),
    and TensorRT still runs the convolutions in INT8 from their quantized inputs."""
    op_types: tuple[str, ...] = COMPUTE_OPS


class PhotoCalibrationReader(CalibrationDataReader):
    """Feeds calibration photographs, one uint8 ``[1, side, side, 3]`` image per step."""

    def __init__(self, photos: Sequence[Photo], side: int) -> None:
        if not photos:
            raise ValueError("calibration needs at least one image")
        self.photos = list(photos)
        self.side = side
        self._iterator: Iterator[dict[str, np.ndarray]] = self._batches()

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        for photo in self.photos:
            yield {INPUT_NAME: batch_of([photo], self.side)}

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next input feed, or None when the photos are exhausted."""
        return next(self._iterator, None)

    def rewind(self) -> None:
        """Start again from the first photo."""
        self._iterator = self._batches()


def edge_convolutions(model: onnx.ModelProto) -> list[str]:
    """Names of the first and last convolution nodes in graph order."""
    compute = [node.name for node in model.graph.node if node.op_type in COMPUTE_OPS]
    return sorted({compute[0], compute[-1]}) if compute else []


@dataclass(frozen=True)
class QuantizationSummary:
    """What the INT8 model ended up with."""

    quantized_nodes: int
    excluded_nodes: tuple[str, ...]
    calibration: str
    calibration_images: int
    side: int
    quantize_outputs: bool


def zero_points_are_zero(model: onnx.ModelProto) -> list[str]:
    """Q/DQ nodes whose zero point is missing-but-nonzero or nonzero, or whose type is not int8 (empty = all good)."""
    initializers = {init.name: init for init in model.graph.initializer}
    offending = []
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 3:
            continue
        zero_point = initializers.get(node.input[2])
        if zero_point is None:
            offending.append(node.name)
            continue
        if zero_point.data_type != onnx.TensorProto.INT8 or np.any(numpy_helper.to_array(zero_point) != 0):
            offending.append(node.name)
    return offending


def calibrator_options(settings: QuantizeSettings) -> dict[str, object]:
    """Options for onnxruntime's calibrator of ``settings.calibration``.

    Set here rather than through ``quantize_static``, which does not forward the histogram size:
    its entropy default (128 bins for 128 quantized bins) leaves a single candidate threshold,
    which is min-max again.
    """
    if settings.calibration is Calibration.ENTROPY:
        return {"symmetric": True, "num_bins": settings.histogram_bins, "num_quantized_bins": 128}
    if settings.calibration is Calibration.PERCENTILE:
        return {"symmetric": True, "num_bins": settings.histogram_bins, "percentile": settings.percentile}
    return {"symmetric": True}


def calibrate(model: Path, photos: Sequence[Photo], settings: QuantizeSettings, cache: Path) -> Path:
    """Run the calibration photos through ``model`` and write the activation ranges to ``cache`` (JSON)."""
    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(io.StringIO()):
        # The histogram calibrators print progress to stdout; the CLI shows its own.
        calibrator = create_calibrator(
            model,
            list(settings.op_types),
            augmented_model_path=str(Path(scratch) / "augmented.onnx"),
            calibrate_method=settings.calibration.method,
            extra_options=calibrator_options(settings),
        )
        calibrator.collect_data(PhotoCalibrationReader(photos, settings.side))
        ranges = calibrator.compute_data()
    save_tensors_data(ranges, cache)
    return cache


def quantize_int8(
    source: Path,
    destination: Path,
    photos: Sequence[Photo],
    settings: QuantizeSettings = QuantizeSettings(),
    calibration_cache: Path | None = None,
) -> QuantizationSummary:
    """Write the INT8 QDQ variant of the FP32 model at ``source``, calibrated on ``photos``.

    The activation ranges are kept in ``calibration_cache`` (onnxruntime's JSON format) when given.
    """
    model = name_nodes(onnx.load(source))
    excluded = pixel_io_nodes(model) + ([] if settings.quantize_edges else edge_convolutions(model))
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        named = Path(scratch) / "named.onnx"
        prepared = Path(scratch) / "prepared.onnx"
        onnx.save(model, named)
        # ONNX shape inference only: symbolic inference gives up on the dynamic skip concatenations, and graph
        # optimizations would rename the nodes the exclusions name.
        quant_pre_process(named, prepared, skip_optimization=True, skip_onnx_shape=False, skip_symbolic_shape=True)
        cache = calibration_cache or Path(scratch) / "calibration.json"
        calibrate(prepared, photos, settings, cache)
        quantize_static(
            prepared,
            destination,
            None,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(settings.op_types),
            per_channel=settings.per_channel,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            calibrate_method=settings.calibration.method,
            calibration_cache_path=cache,
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                "OpTypesToExcludeOutputQuantization": [] if settings.quantize_outputs else list(settings.op_types),
            },
        )
    quantized = onnx.load(destination)
    onnx.helper.set_model_props(quantized, {p.key: p.value for p in model.metadata_props})
    onnx.checker.check_model(quantized)
    onnx.save(quantized, destination)
    offending = zero_points_are_zero(quantized)
    if offending:
        raise RuntimeError(f"quantization produced non-symmetric Q/DQ nodes: {', '.join(offending[:5])}")
    count = sum(node.op_type == "QuantizeLinear" for node in quantized.graph.node)
    return QuantizationSummary(
        count, tuple(excluded), settings.calibration.value, len(photos), settings.side, settings.quantize_outputs
    )
