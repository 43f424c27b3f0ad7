"""Measure the export pipeline on one full-size generator per family: ``python -m export.bench --out DIR``.

No trained checkpoints can be downloaded here, so each family's default (released) configuration
is built with seeded random weights and saved in its original checkpoint format. Default random
initialisation leaves a generator's output almost flat (a near-constant image quantizes
perfectly and says nothing), so the weights are first rescaled layer by layer on calibration
photographs, LSUV-style: every convolution's output gets unit variance, batch-norm statistics are
re-estimated as training would leave them, and the last layer spreads its output over the
family's value range. The checkpoint then goes through exactly what ``pastiche export`` runs.
Random weights draw textures rather than a style, so these numbers describe the numerics of
each architecture under realistic activation ranges, not a particular trained style.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn

from export.checkpoint import save_state_dict
from export.families import FAMILIES, FamilySpec
from export.latency import LatencySettings, describe_machine
from export.photos import batch_of, calibration_photos
from export.pipeline import ExportSettings, run_export

app = typer.Typer(add_completion=False)


def _convolutions(module: nn.Module) -> list[nn.Module]:
    # Registration order is forward order in every family's module tree.
    return [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]


def _output_of(module: nn.Module, layer: nn.Module, x: Tensor) -> Tensor:
    captured: list[Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    with torch.no_grad():
        module(x)
    handle.remove()
    return captured[0]


def _rescale(module: nn.Module, layer: nn.Module, x: Tensor, std: float, mean: float | None = None) -> None:
    with torch.no_grad():
        scale = std / float(_output_of(module, layer, x).std())
        layer.weight.mul_(scale)
        if layer.bias is not None:
            layer.bias.mul_(scale)
        if mean is not None and layer.bias is not None:
            layer.bias.add_(mean - float(_output_of(module, layer, x).mean()))


def _reestimate_batch_norm(module: nn.Module, x: Tensor) -> None:
    norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the images seen
    module.train()
    with torch.no_grad():
        for image in x:
            module(image[None])
    module.eval()


def seeded_generator(spec: FamilySpec, seed: int = 0, side: int = 64, rescale: bool = True) -> nn.Module:
    """The family's default configuration with seeded weights, rescaled to realistic activations."""
    torch.manual_seed(seed)
    module = spec.instantiate()
    if not rescale:
        return module
    low, high = spec.value_range
    images = torch.from_numpy(batch_of(calibration_photos(3), max(side, spec.size_multiple)))
    x = images.permute(0, 3, 1, 2).float() * ((high - low) / 255.0) + low
    *inner, last = _convolutions(module)
    for layer in inner:
        _rescale(module, layer, x, std=1.0)
    _reestimate_batch_norm(module, x)
    # tanh families: pre-activations of std 1 use most of [-1, 1]; Johnson's net outputs pixels directly.
    centre, spread = (low + high) / 2, (high - low) / 4 if high > 1 else 1.0
    _rescale(module, last, x, std=spread, mean=centre)
    return module.eval()


def bench_family(name: str, out: Path, side: int, runs: int, threads: int, rescale: bool = True) -> dict[str, object]:
    """Export one full-size seeded generator of family ``name``; returns its headline numbers."""
    spec = FAMILIES[name]
    directory = out / name
    checkpoint = save_state_dict(seeded_generator(spec, rescale=rescale), directory / "checkpoint.pth")
    settings = ExportSettings(
        family=name,
        title=f"seeded {name}",
        eval_side=side,
        latency=LatencySettings(side=side, runs=runs, threads=threads),
    )
    report = run_export(checkpoint, directory / "export", settings).report
    row: dict[str, object] = {"family": name, "config": report.checkpoint.config, "side": report.evaluation.side}
    for variant in report.variants:
        if variant.psnr and variant.ssim:
            row[f"{variant.precision}_psnr_min"] = variant.psnr.min
            row[f"{variant.precision}_psnr_mean"] = variant.psnr.mean
            row[f"{variant.precision}_ssim_min"] = variant.ssim.min
            row[f"{variant.precision}_ssim_mean"] = variant.ssim.mean
            row[f"{variant.precision}_publishable"] = variant.publishable
        if variant.latency:
            row[f"{variant.precision}_ms"] = variant.latency.median_ms
            row[f"{variant.precision}_images_per_second"] = variant.latency.images_per_second
    row["int8_fp32_throughput"] = report.speedup("int8")
    row["fp16_fp32_throughput"] = report.speedup("fp16")
    row["parity_max_diff"] = max(case.max_abs_diff for case in report.parity.cases)
    return row


@app.command()
def main(
    out: Annotated[Path, typer.Option(help="Where exports and summary.json go.")] = Path(".pastiche/bench/export"),
    family: Annotated[list[str] | None, typer.Option(help="Families to measure (default: all).")] = None,
    side: Annotated[int, typer.Option(help="Evaluation and timing side (rounded up to the size multiple).")] = 256,
    runs: Annotated[int, typer.Option(help="Timed runs per variant.")] = 5,
    threads: Annotated[int, typer.Option(help="ONNX Runtime threads (0: all cores).")] = 0,
    rescale: Annotated[
        bool, typer.Option(help="LSUV-rescale the random weights (else PyTorch's default init).")
    ] = True,
) -> None:
    """Export one full-size seeded model per family and summarise PSNR/SSIM and INT8/FP32 throughput."""
    console = Console()
    rows = []
    for name in family or list(FAMILIES):
        with console.status(f"exporting full-size {name}"):
            rows.append(bench_family(name, out, side, runs, threads, rescale))
        console.print(f"[green]✓[/green] {name}")
    machine = describe_machine()
    summary = {"machine": machine.model_dump(), "rescaled": rescale, "families": rows}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    table = Table(title=f"{machine.processor}, {machine.cpus} CPUs, onnxruntime {machine.onnxruntime}")
    for column in ("family", "side", "FP16 PSNR min/mean", "INT8 PSNR min/mean", "INT8 SSIM min/mean", "INT8/FP32"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["family"]),
            str(row["side"]),
            f"{row['fp16_psnr_min']:.1f} / {row['fp16_psnr_mean']:.1f}",
            f"{row['int8_psnr_min']:.1f} / {row['int8_psnr_mean']:.1f}",
            f"{row['int8_ssim_min']:.4f} / {row['int8_ssim_mean']:.4f}",
            f"{row['int8_fp32_throughput']:.2f}x",
        )
    console.print(table)


if __name__ == "__main__":
    app()
