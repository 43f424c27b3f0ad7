"""In-process baselines on the same model and image: PyTorch eager and ONNX Runtime, batch 1."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class LoopResult:
    """Back-to-back single-image calls: throughput and latency percentiles (ms)."""

    iterations: int
    images_per_s: float
    p50_ms: float
    p99_ms: float


def timed_loop(call: Callable[[], object], seconds: float, min_iterations: int = 5, warmup: int = 2) -> LoopResult:
    """Call repeatedly for ``seconds`` (at least ``min_iterations`` times) after ``warmup`` calls."""
    for _ in range(warmup):
        call()
    latencies = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds or len(latencies) < min_iterations:
        begin = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return LoopResult(len(latencies), len(latencies) / elapsed, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)))


def torch_eager(generator, value_range: tuple[float, float], image: np.ndarray, seconds: float) -> LoopResult:  # noqa: ANN001
    """The served wrapper (uint8 NHWC in and out) in PyTorch eager mode, inference mode."""
    import torch

    from export.onnx_export import ServedGenerator

    served = ServedGenerator(generator.eval(), value_range).eval()
    batch = torch.from_numpy(np.ascontiguousarray(image[np.newaxis]).copy())

    def call() -> None:
        with torch.inference_mode():
            served(batch)

    return timed_loop(call, seconds)


def onnxruntime_session(onnx_path: Path, image: np.ndarray, seconds: float) -> LoopResult:
    """ONNX Runtime CPU session with the same thread settings as Triton's python backend model."""
    import onnxruntime as ort

    from pastiche.contract import INPUT_NAME

    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feed = {INPUT_NAME: image[np.newaxis]}
    return timed_loop(lambda: session.run(None, feed), seconds)
