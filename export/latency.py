"""ONNX Runtime CPU latency and throughput of several model variants, measured in one run.

Variants are timed in interleaved rounds (FP32, FP16, INT8, FP32, …) on the same input, so
that load from other processes on a shared machine affects all of them alike and the ratios
between them stay meaningful.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict

from pastiche.contract import INPUT_NAME


class LatencySettings(BaseModel):
    """What to time: resolution, batch, repetitions and threads."""

    model_config = ConfigDict(frozen=True)

    side: int | None = None
    """Square input side in pixels; ``None`` means the model's preferred side."""
    batch: int = 1
    runs: int = 5
    warmup: int = 1
    threads: int = 0
    """ONNX Runtime intra-op threads; 0 lets it use every physical core."""


class Latency(BaseModel):
    """Timing of one variant at a stated resolution and batch."""

    side: int
    batch: int
    runs: int
    threads: int
    median_ms: float
    p90_ms: float
    images_per_second: float


class Machine(BaseModel):
    """Where the timings were taken."""

    processor: str
    cpus: int
    onnxruntime: str
    providers: list[str]


def describe_machine() -> Machine:
    """The CPU model (from /proc/cpuinfo where available), core count and ONNX Runtime build."""
    processor = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return Machine(processor=processor, cpus=cpus, onnxruntime=ort.__version__, providers=["CPUExecutionProvider"])


def cpu_session(path: Path, threads: int = 0) -> ort.InferenceSession:
    """A CPU ONNX Runtime session with full graph optimizations and ``threads`` intra-op threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure_latency(models: Mapping[str, Path], images: np.ndarray, settings: LatencySettings) -> dict[str, Latency]:
    """Time each model on ``images`` (uint8 ``[N, H, W, 3]``) in interleaved rounds."""
    sessions = {name: cpu_session(path, settings.threads) for name, path in models.items()}
    feed = {INPUT_NAME: np.ascontiguousarray(images)}
    for session in sessions.values():
        for _ in range(settings.warmup):
            session.run(None, feed)
    timings: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(settings.runs):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(None, feed)
            timings[name].append(time.perf_counter() - start)
    batch, side = images.shape[0], images.shape[1]
    return {
        name: Latency(
            side=side,
            batch=batch,
            runs=settings.runs,
            threads=settings.threads,
            median_ms=float(np.median(seconds) * 1000),
            p90_ms=float(np.percentile(seconds, 90) * 1000),
            images_per_second=float(batch / np.median(seconds)),
        )
        for name, seconds in timings.items()
    }
