"""INT8 variant for the precision sweep: ONNX Runtime static quantization, QDQ format, symmetric.

The export stage owns production INT8 exports; until that lands on main the sweep quantizes
its own model here, with the settings TensorRT also accepts (symmetric int8 activations and
weights, zero point 0, per-channel weights), calibrated on the benchmark photographs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from pastiche.contract import INPUT_NAME


class PhotoCalibration(CalibrationDataReader):
    """Feeds one uint8 NHWC image per calibration step."""

    def __init__(self, images: list[np.ndarray]) -> None:
        self.batches: Iterator[dict[str, np.ndarray]] = iter({INPUT_NAME: image[np.newaxis]} for image in images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


def quantize_int8(fp32_path: Path, int8_path: Path, calibration_images: list[np.ndarray]) -> Path:
    """Write the QDQ INT8 model for ``fp32_path`` calibrated on ``calibration_images``."""
    quantize_static(
        str(fp32_path),
        str(int8_path),
        PhotoCalibration(calibration_images),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["Conv", "ConvTranspose"],
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )
    return int8_path
