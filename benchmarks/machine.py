"""Where a benchmark ran: CPU, cores, memory, load, and the versions of everything measured."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

import psutil

PACKAGES = ("torch", "onnxruntime", "onnx", "tritonclient", "nvidia-pytriton", "locust", "numpy", "fastapi")


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (or the platform's guess)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """Vector-instruction flags that decide FP32/INT8 speed (AVX2, AVX-512, VNNI, AMX)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return []
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return sorted(f for f in flags if f.startswith(("avx", "amx", "fma")) or "vnni" in f)
    return []


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages."""
    return os.getloadavg()


def describe_machine() -> dict:
    """A JSON-ready description of this machine and software."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }
