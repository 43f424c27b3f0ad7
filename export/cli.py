"""``pastiche export CHECKPOINT --out DIR``: the ML engineer's command before publishing a style."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from export.pipeline import ExportResult

# The export modules import torch and onnxruntime (seconds); they load when the command runs,
# so that `pastiche --help` and the other subcommands stay fast.

EXIT_BAD_INPUT = 2
EXIT_EXPORT_FAILED = 1
EXIT_GATE_FAILED = 3


class BatchStatsChoice(StrEnum):
    """CLI spelling of :data:`export.families.normalization.BatchStats`."""

    RUNNING = "running"
    PER_IMAGE = "per-image"


class CalibrationChoice(StrEnum):
    """CLI spelling of :class:`export.quantize.Calibration`."""

    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"


class VariantsChoice(StrEnum):
    """Which reduced-precision variants to produce."""

    ALL = "all"
    FP16 = "fp16"
    INT8 = "int8"
    NONE = "none"

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions this choice stands for."""
        return {"all": ("fp16", "int8"), "fp16": ("fp16",), "int8": ("int8",), "none": ()}[self.value]


def _fail(console: Console, message: str, code: int) -> typer.Exit:
    console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _summary_table(result: ExportResult) -> Table:
    report = result.report
    table = Table(title=f"{report.metadata['title']} ({report.checkpoint.family})")
    for column in ("precision", "PSNR dB min/mean", "SSIM min/mean", "MB", "ms", "img/s", "vs FP32", "verdict"):
        table.add_column(column)
    for v in report.variants:
        speed = report.speedup(v.precision)
        failures = ", ".join(f"{g.metric} short by {-g.margin:.3g}" for g in v.failures)
        table.add_row(
            v.precision,
            f"{v.psnr.min:.2f} / {v.psnr.mean:.2f}" if v.psnr else "—",
            f"{v.ssim.min:.4f} / {v.ssim.mean:.4f}" if v.ssim else "—",
            f"{v.size_bytes / 1e6:.2f}",
            f"{v.latency.median_ms:.1f}" if v.latency else "—",
            f"{v.latency.images_per_second:.2f}" if v.latency else "—",
            f"{speed:.2f}x" if speed else "—",
            "[green]published[/green]" if v.publishable else f"[red]rejected[/red] ({failures})",
        )
    return table


def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="Generator checkpoint (.pth/.pt) as the original code saved it.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory for models, report and engines.")],
    family: Annotated[
        str | None,
        typer.Option(help="Generator family (e.g. resnet, unet_256); detected from the checkpoint keys when omitted."),
    ] = None,
    entry: Annotated[str | None, typer.Option(help="Entry of a checkpoint dict holding several state_dicts.")] = None,
    prefix: Annotated[str | None, typer.Option(help="Use only keys under this prefix (e.g. 'netG.').")] = None,
    trust_pickle: Annotated[
        bool, typer.Option(help="Allow pickled Python objects in the checkpoint (runs code: trusted files only).")
    ] = False,
    align_corners: Annotated[
        bool, typer.Option(help="AnimeGANv2 upsampling: align_corners=True (torch.hub) or scale_factor=2 (test.py).")
    ] = True,
    batchnorm_stats: Annotated[
        BatchStatsChoice,
        typer.Option(help="Batch-norm checkpoints: running statistics, or per-image (pix2pix test.py without --eval)."),
    ] = BatchStatsChoice.RUNNING,
    title: Annotated[str | None, typer.Option(help="Style title (default: checkpoint file name).")] = None,
    description: Annotated[str, typer.Option(help="Style description stored in the model metadata.")] = "",
    max_side: Annotated[int, typer.Option(help="Largest image side the style accepts.")] = 1024,
    preview_key: Annotated[str, typer.Option(help="S3 key of a preview image, stored in the metadata.")] = "",
    variants: Annotated[
        VariantsChoice, typer.Option(help="Reduced-precision variants to produce.")
    ] = VariantsChoice.ALL,
    calibration: Annotated[
        CalibrationChoice, typer.Option(help="INT8 calibration method.")
    ] = CalibrationChoice.PERCENTILE,
    calibration_dir: Annotated[
        Path | None, typer.Option(help="Folder of calibration images (default: bundled photos, calibration split).")
    ] = None,
    calibration_limit: Annotated[
        int | None, typer.Option(min=1, help="Use at most this many calibration images.")
    ] = None,
    quantize_edges: Annotated[bool, typer.Option(help="Also quantize the first and last convolutions.")] = False,
    quantize_outputs: Annotated[
        bool, typer.Option(help="Quantize convolution outputs too (ONNX Runtime CPU int8 speed) or keep them float.")
    ] = True,
    eval_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of held-out evaluation images (default: bundled photos, evaluation split)."),
    ] = None,
    eval_limit: Annotated[int | None, typer.Option(min=1, help="Use at most this many evaluation images.")] = None,
    eval_side: Annotated[
        int | None, typer.Option(min=1, help="Side of evaluation/calibration images (default: preferred side).")
    ] = None,
    fp16_min_psnr: Annotated[float, typer.Option(help="FP16 gate: minimum PSNR vs FP32 (dB), worst image.")] = 40.0,
    int8_min_psnr: Annotated[float, typer.Option(help="INT8 gate: minimum PSNR vs FP32 (dB), worst image.")] = 30.0,
    int8_min_ssim: Annotated[float, typer.Option(help="INT8 gate: minimum SSIM vs FP32, worst image.")] = 0.95,
    latency_side: Annotated[
        int | None, typer.Option(min=1, help="Side for CPU timing (default: preferred side).")
    ] = None,
    latency_batch: Annotated[int, typer.Option(min=1, help="Batch size for CPU timing.")] = 1,
    latency_runs: Annotated[int, typer.Option(min=1, help="Timed runs per variant.")] = 5,
    threads: Annotated[int, typer.Option(min=0, help="ONNX Runtime intra-op threads for timing (0: all cores).")] = 0,
    engines: Annotated[
        bool, typer.Option(help="Plan TensorRT engines (and build them where a GPU is present).")
    ] = False,
    triton_config: Annotated[
        Path | None, typer.Option(help="Triton config.pbtxt whose batching limits shape the engine profile.")
    ] = None,
    max_batch: Annotated[int | None, typer.Option(min=1, help="Engine profile: maximum batch (default 8).")] = None,
    opt_batch: Annotated[int | None, typer.Option(min=1, help="Engine profile: batch to tune for.")] = None,
    tensorrt_version: Annotated[str, typer.Option(help="TensorRT version of the serving container.")] = "10.5.0",
    builder_flags: Annotated[
        bool, typer.Option(help="TensorRT 10 only: use precision builder flags instead of strong typing.")
    ] = False,
    workspace_mib: Annotated[int, typer.Option(min=1, help="TensorRT builder workspace limit (MiB).")] = 4096,
    strict: Annotated[bool, typer.Option(help="Exit with status 3 when a requested variant fails its gates.")] = False,
    pictures: Annotated[bool, typer.Option(help="Write comparison.png.")] = True,
) -> None:
    """Export a generator checkpoint to validated ONNX (FP32, FP16, INT8) with quality gates and a report."""
    from export.checkpoint import CheckpointError, ServingOptions
    from export.gates import GateThresholds
    from export.latency import LatencySettings
    from export.pipeline import EngineSettings, ExportFailed, ExportSettings, run_export
    from export.quantize import Calibration, QuantizeSettings
    from export.tensorrt import EngineError, ServingLimits

    console = Console(stderr=True)
    if eval_dir is not None and calibration_dir is not None and eval_dir.resolve() == calibration_dir.resolve():
        raise _fail(console, "--eval-dir and --calibration-dir must differ: gates need held-out images", EXIT_BAD_INPUT)
    try:
        if triton_config is not None:
            limits = ServingLimits.from_triton_config(
                triton_config.read_text(), max_batch_size=max_batch, opt_batch=opt_batch
            )
        else:
            limits = ServingLimits(max_batch_size=max_batch or 8, opt_batch=opt_batch)
    except (OSError, ValueError) as error:
        raise _fail(console, f"cannot use --triton-config {triton_config}: {error}", EXIT_BAD_INPUT) from error
    settings = ExportSettings(
        family=family,
        serving=ServingOptions(
            align_corners=align_corners,
            batch_stats="per_image" if batchnorm_stats is BatchStatsChoice.PER_IMAGE else "running",
        ),
        entry=entry,
        prefix=prefix,
        trust_pickle=trust_pickle,
        title=title,
        description=description,
        max_side=max_side,
        preview_key=preview_key,
        variants=variants.precisions,  # type: ignore[arg-type]
        eval_folder=eval_dir,
        eval_limit=eval_limit,
        eval_side=eval_side,
        calibration_folder=calibration_dir,
        calibration_limit=calibration_limit,
        quantize=QuantizeSettings(
            calibration=Calibration(calibration.value),
            quantize_edges=quantize_edges,
            quantize_outputs=quantize_outputs,
        ),
        thresholds=GateThresholds(
            fp16_min_psnr=fp16_min_psnr, int8_min_psnr=int8_min_psnr, int8_min_ssim=int8_min_ssim
        ),
        latency=LatencySettings(side=latency_side, batch=latency_batch, runs=latency_runs, threads=threads),
        engines=EngineSettings(
            limits=limits,
            tensorrt_version=tensorrt_version,
            typing="flags" if builder_flags else None,
            workspace_mib=workspace_mib,
        )
        if engines
        else None,
        pictures=pictures,
    )
    tasks: list[TaskID] = []
    try:
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
        ) as progress:

            def step(description: str) -> None:
                if tasks:
                    progress.update(tasks[-1], completed=1)
                tasks.append(progress.add_task(description, total=1))

            result = run_export(checkpoint, out, settings, step)
            progress.update(tasks[-1], completed=1)
    except (CheckpointError, FileNotFoundError, EngineError) as error:
        raise _fail(console, str(error), EXIT_BAD_INPUT) from error
    except ExportFailed as error:
        raise _fail(console, str(error), EXIT_EXPORT_FAILED) from error
    console.print(_summary_table(result))
    for name in sorted(result.files):
        console.print(f"  wrote {result.directory / name}", highlight=False, soft_wrap=True)
    rejected = [v for v in result.report.variants if not v.publishable]
    for variant in rejected:
        console.print(
            f"[yellow]{variant.precision} not published:[/yellow] "
            + "; ".join(f"{g.metric} {g.measured:.4g} < {g.threshold:.4g}" for g in variant.failures),
            highlight=False,
            soft_wrap=True,
        )
    if strict and rejected:
        raise typer.Exit(EXIT_GATE_FAILED)
