"""The export report: one JSON document, a short Markdown summary, and a comparison picture.

Everything an ML engineer needs to decide whether to publish: which checkpoint and family,
graph opset and operators, FP32 parity with PyTorch, and per precision the PSNR/SSIM against
FP32 (min and mean over held-out photographs), gate verdicts with margins, size on disk and
ONNX Runtime CPU latency/throughput, all measured in the same run.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from export.gates import GateResult, GateThresholds, ImageScore, Summary
from export.latency import Latency, LatencySettings, Machine
from export.onnx_export import GraphInfo
from export.parity import ParityReport

Precision = Literal["fp32", "fp16", "int8"]


class CheckpointInfo(BaseModel):
    """The source checkpoint and what loading it found."""

    path: str
    sha256: str
    family: str
    origin: str
    config: dict[str, Any]
    notes: list[str] = Field(default_factory=list)
    dropped_keys: list[str] = Field(default_factory=list)


class VariantReport(BaseModel):
    """One precision variant: quality against FP32, gates, size and speed."""

    precision: Precision
    publishable: bool
    file: str | None
    """Path relative to the output directory (under ``rejected/`` when a gate failed)."""
    size_bytes: int
    psnr: Summary | None = None
    ssim: Summary | None = None
    images: list[ImageScore] = Field(default_factory=list)
    gates: list[GateResult] = Field(default_factory=list)
    latency: Latency | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    """How the variant was made (FP16 plan, quantization summary)."""

    @property
    def failures(self) -> list[GateResult]:
        """Gates this variant did not pass."""
        return [gate for gate in self.gates if not gate.passed]


class EvaluationInfo(BaseModel):
    """Which photographs the gates were measured on, and at what size."""

    source: str
    photos: list[str]
    side: int


class CalibrationInfo(BaseModel):
    """Which photographs calibrated INT8, how, and at what size."""

    source: str
    photos: list[str]
    side: int
    method: str


class EngineInfo(BaseModel):
    """A TensorRT engine built, or the command that builds it where no GPU is present."""

    precision: Precision
    built: bool
    engine: str | None = None
    manifest: str | None = None
    command: str
    reason: str = ""


class ExportReport(BaseModel):
    """Everything measured while exporting one checkpoint."""

    model_config = ConfigDict(ser_json_inf_nan="strings")

    created: datetime
    checkpoint: CheckpointInfo
    metadata: dict[str, str]
    graph: GraphInfo
    parity: ParityReport
    evaluation: EvaluationInfo
    calibration: CalibrationInfo | None = None
    thresholds: GateThresholds
    latency_settings: LatencySettings
    machine: Machine
    variants: list[VariantReport]
    engines: list[EngineInfo] = Field(default_factory=list)

    def variant(self, precision: Precision) -> VariantReport | None:
        """The report of ``precision``, if it was produced."""
        return next((v for v in self.variants if v.precision == precision), None)

    def speedup(self, precision: Precision) -> float | None:
        """Throughput of ``precision`` relative to FP32 (same run, same resolution)."""
        base, other = self.variant("fp32"), self.variant(precision)
        if not (base and other and base.latency and other.latency):
            return None
        return other.latency.images_per_second / base.latency.images_per_second

    @property
    def published(self) -> list[str]:
        """Files written as publishable."""
        return [v.file for v in self.variants if v.publishable and v.file]


def _metric(summary: Summary | None, unit: str = "", digits: int = 2) -> str:
    if summary is None:
        return "—"
    return f"{summary.min:.{digits}f} / {summary.mean:.{digits}f}{unit}"


def _verdict(variant: VariantReport) -> str:
    if variant.publishable:
        return "published"
    failed = "; ".join(
        f"{g.metric.upper()} {g.measured:.3g} < {g.threshold:.3g} (short by {-g.margin:.3g})" for g in variant.failures
    )
    return f"REJECTED: {failed}"


def render_markdown(report: ExportReport) -> str:
    """A short human summary of ``report``."""
    ckpt = report.checkpoint
    config = ", ".join(f"{k}={v}" for k, v in ckpt.config.items())
    lines = [
        f"# Export report: {report.metadata.get('title', ckpt.family)}",
        "",
        f"- Checkpoint: `{ckpt.path}` (sha256 `{ckpt.sha256[:16]}…`)",
        f"- Family: **{ckpt.family}** ({config}) — {ckpt.origin}",
    ]
    lines += [f"- Loading: {note}" for note in ckpt.notes]
    lines += [
        (
            f"- Graph: opset {report.graph.opset}, {report.graph.nodes} nodes, "
            f"{report.graph.parameters / 1e6:.2f} M parameters; operators: {', '.join(report.graph.operators)}"
        ),
        (
            f"- Sizes: multiple of {report.metadata.get('size_multiple')}, preferred side "
            f"{report.metadata.get('preferred_side')}, max side {report.metadata.get('max_side')}"
        ),
        "",
        f"## FP32 parity with PyTorch (tolerance {report.parity.tolerance} level): "
        + ("passed" if report.parity.passed else "FAILED"),
        "",
        "| H x W | batch | max diff | values differing |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {c.height} x {c.width} | {c.batch} | {c.max_abs_diff} | {c.differing_fraction:.4%} |"
        for c in report.parity.cases
    ]
    latency = next((v.latency for v in report.variants if v.latency), None)
    timing = (
        f"ONNX Runtime CPU at {latency.side}x{latency.side}, batch {latency.batch}, median of {latency.runs} runs"
        if latency
        else "not measured"
    )
    lines += [
        "",
        (
            f"## Variants vs FP32 on {len(report.evaluation.photos)} held-out photos at "
            f"{report.evaluation.side}x{report.evaluation.side} ({', '.join(report.evaluation.photos)})"
        ),
        "",
        f"Timing: {timing}; {report.machine.processor}, {report.machine.cpus} CPUs.",
        "",
        "| precision | PSNR dB min / mean | SSIM min / mean | size MB | latency ms | images/s | vs FP32 | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in report.variants:
        speed = report.speedup(v.precision)
        lines.append(
            f"| {v.precision} | {_metric(v.psnr)} | {_metric(v.ssim, digits=4)} | {v.size_bytes / 1e6:.2f} | "
            + (f"{v.latency.median_ms:.1f} | {v.latency.images_per_second:.2f} | " if v.latency else "— | — | ")
            + (f"{speed:.2f}x" if speed else "—")
            + f" | {_verdict(v)} |"
        )
    if report.calibration:
        cal = report.calibration
        lines += [
            "",
            f"INT8 calibration: {cal.method} over {len(cal.photos)} photos at {cal.side}x{cal.side} ({cal.source}).",
        ]
    if report.engines:
        lines += ["", "## TensorRT engines", ""]
        for engine in report.engines:
            state = f"built `{engine.engine}`" if engine.built else f"not built here ({engine.reason})"
            lines.append(f"- {engine.precision}: {state}; build command: `{engine.command}`")
    return "\n".join(lines) + "\n"


def comparison_figure(
    path: Path,
    names: list[str],
    inputs: np.ndarray,
    outputs: dict[str, np.ndarray],
    amplify: int = 8,
) -> Path:
    """A grid per photo: input, each variant's output, and each variant's difference to FP32 (amplified)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    precisions = list(outputs)
    others = [p for p in precisions if p != "fp32"]
    columns = 1 + len(precisions) + len(others)
    figure, axes = plt.subplots(len(names), columns, figsize=(2.2 * columns, 2.2 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        panels: list[tuple[str, np.ndarray]] = [(f"{name}: input", inputs[row])]
        panels += [(precision, outputs[precision][row]) for precision in precisions]
        reference = outputs["fp32"][row].astype(np.int16)
        panels += [
            (
                f"|{p} - fp32| x{amplify}",
                np.clip(np.abs(outputs[p][row].astype(np.int16) - reference) * amplify, 0, 255).astype(np.uint8),
            )
            for p in others
        ]
        for axis, (title, image) in zip(axes[row], panels, strict=True):
            axis.imshow(image)
            axis.set_title(title, fontsize=8)
            axis.axis("off")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
