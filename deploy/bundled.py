"""The styles `make up` serves by default: the shipped checkpoints, through the normal export → repository path.

Each style in :data:`export.styles.BUNDLED_STYLES` is exported like any engineer's checkpoint
(:func:`export.pipeline.run_export`: family detection, FP32 ONNX, parity with PyTorch, report) and
written as version 1 of its model. Exports are cached per checkpoint digest and metadata, so only
the first start (or new weights) pays for them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from rich.console import Console

from deploy.repository import ServingPolicy, Target, write_model
from export.latency import LatencySettings
from export.pipeline import FILES, ExportSettings, run_export
from export.styles import BUNDLED_STYLES, BundledStyle
from pastiche.contract import StyleMetadata


def export_settings(style: BundledStyle) -> ExportSettings:
    """How a bundled style is exported: family detected from the checkpoint, FP32 only (the local
    target serves FP32), one timing run, no pictures."""
    return ExportSettings(
        title=style.title,
        description=style.description,
        variants=(),
        latency=LatencySettings(runs=1, warmup=0),
        pictures=False,
    )


def fingerprint(style: BundledStyle) -> str:
    """Changes whenever the weights or the served texts do, so cached exports are rebuilt."""
    settings = export_settings(style)
    payload = json.dumps(
        {"sha256": style.checkpoint_sha256(), "title": settings.title, "description": settings.description},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def export_bundled(style: BundledStyle, cache_dir: Path) -> Path:
    """The export directory of ``style`` (``model.onnx``, ``report.md``…), exported once per fingerprint."""
    directory = cache_dir / f"{style.name}-{fingerprint(style)}"
    if not (directory / "report.json").exists():
        staging = directory.with_name(directory.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        run_export(style.checkpoint, staging, export_settings(style))
        shutil.rmtree(directory, ignore_errors=True)
        staging.rename(directory)
    return directory


def served_metadata(export_dir: Path) -> StyleMetadata:
    """The metadata the export stored in its report (the same that is inside the ONNX file)."""
    report = json.loads((export_dir / "report.json").read_text())
    return StyleMetadata.from_parameters(report["metadata"])


def build_bundled_repository(
    repository: Path, cache_dir: Path, policy: ServingPolicy = ServingPolicy(), console: Console | None = None
) -> list[str]:
    """Write every bundled style as version 1 of its model; returns the style names."""
    console = console or Console(stderr=True)
    names = []
    for style in BUNDLED_STYLES.values():
        with console.status(f"exporting {style.name} ({style.family}) to ONNX"):
            export_dir = export_bundled(style, cache_dir)
        metadata = served_metadata(export_dir)
        write_model(repository, style.name, export_dir / FILES["fp32"], metadata, Target.LOCAL, policy, version=1)
        console.print(f"[green]✓[/] {style.name}: {repository / style.name}")
        names.append(style.name)
    return names
