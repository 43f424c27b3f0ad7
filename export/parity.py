"""Parity of the exported FP32 graph with the PyTorch generator on real photographs.

The same served wrapper (uint8 in, rounding and clamping inside) runs in PyTorch and in ONNX
Runtime at several resolutions and batch sizes; the largest per-value difference must stay
within ``tolerance`` uint8 levels (rounding of values that land near .5 can flip by one).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from export.latency import cpu_session
from export.onnx_export import torch_reference
from export.photos import Photo, fit
from pastiche.contract import INPUT_NAME

Shape = tuple[int, int, int]
"""(height, width, batch)."""


class ParityCase(BaseModel):
    """One resolution and batch size."""

    height: int
    width: int
    batch: int
    max_abs_diff: int
    differing_fraction: float
    """Share of output values that differ at all."""


class ParityReport(BaseModel):
    """All cases and whether each stayed within tolerance."""

    tolerance: int
    cases: list[ParityCase]
    passed: bool


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``value``."""
    return -(-value // multiple) * multiple


def default_parity_shapes(size_multiple: int) -> list[Shape]:
    """Two resolutions (one square, one not) at batch sizes 1 and 2, valid for ``size_multiple``."""
    side = round_up(128, size_multiple)
    wide = max(round_up(192, size_multiple), side + size_multiple)
    return [(side, side, 1), (side, wide, 2)]


def photo_batch(photos: Sequence[Photo], height: int, width: int, batch: int) -> np.ndarray:
    """uint8 ``[batch, height, width, 3]`` from the photos (cycled), each fitted to the size."""
    return np.stack([fit(photos[i % len(photos)].pixels, height, width) for i in range(batch)])


def check_parity(
    generator: nn.Module,
    value_range: tuple[float, float],
    onnx_path: Path,
    photos: Sequence[Photo],
    shapes: Sequence[Shape],
    tolerance: int = 1,
) -> ParityReport:
    """Compare ONNX Runtime with PyTorch on ``photos`` at each (height, width, batch)."""
    session = cpu_session(onnx_path)
    cases = []
    for offset, (height, width, batch) in enumerate(shapes):
        # Rotate the photos so each case sees different ones.
        rotated = list(photos[offset % len(photos) :]) + list(photos[: offset % len(photos)])
        images = photo_batch(rotated, height, width, batch)
        with torch.inference_mode():
            expected = torch_reference(generator, value_range, images).astype(np.int16)
        got = session.run(None, {INPUT_NAME: images})[0].astype(np.int16)
        if got.shape != expected.shape:
            raise RuntimeError(f"ONNX output shape {got.shape} differs from PyTorch {expected.shape}")
        diff = np.abs(got - expected)
        cases.append(
            ParityCase(
                height=height,
                width=width,
                batch=batch,
                max_abs_diff=int(diff.max()),
                differing_fraction=float(np.count_nonzero(diff) / diff.size),
            )
        )
    return ParityReport(tolerance=tolerance, cases=cases, passed=all(c.max_abs_diff <= tolerance for c in cases))
