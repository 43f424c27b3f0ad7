"""The styles `make up` serves by default, exported through the normal export → repository path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from torch import nn

from deploy.repository import ServingPolicy, Target, write_model
from export.families import RESNET, FamilySpec, build_seeded_resnet
from export.onnx_export import export_onnx
from pastiche.contract import StyleMetadata


@dataclass(frozen=True)
class BundledStyle:
    """A style shipped with the repository: how to build its generator, and what it says about itself."""

    name: str
    family: FamilySpec
    metadata: StyleMetadata
    build: Callable[[], nn.Module]
    source_id: str
    """Changes whenever the weights change, so cached exports are rebuilt."""


def bundled_styles() -> list[BundledStyle]:
    """Every style ``make up`` serves."""
    return [
        BundledStyle(
            name="seeded-resnet",
            family=RESNET,
            metadata=StyleMetadata(
                title="Seeded ResNet (untrained)",
                description="CycleGAN ResNet generator with deterministic random weights: a plumbing check.",
                architecture=RESNET.name,
                size_multiple=RESNET.size_multiple,
                preferred_side=RESNET.preferred_side,
            ),
            build=lambda: build_seeded_resnet(ngf=16, n_blocks=6, seed=0),
            source_id="seeded-resnet-ngf16-b6-seed0",
        )
    ]


def _fingerprint(style: BundledStyle) -> str:
    payload = json.dumps({"source": style.source_id, "metadata": style.metadata.to_parameters()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def export_bundled(style: BundledStyle, cache_dir: Path) -> Path:
    """The style's FP32 ONNX, exported once per fingerprint and cached."""
    path = cache_dir / f"{style.name}-{_fingerprint(style)}.onnx"
    if not path.exists():
        tmp = path.with_suffix(".tmp.onnx")
        export_onnx(style.build(), style.family.value_range, tmp, style.metadata)
        tmp.rename(path)
    return path


def build_bundled_repository(
    repository: Path, cache_dir: Path, policy: ServingPolicy = ServingPolicy(), console: Console | None = None
) -> list[str]:
    """Write every bundled style as version 1 of its model; returns the style names."""
    console = console or Console(stderr=True)
    names = []
    for style in bundled_styles():
        with console.status(f"exporting {style.name} to ONNX"):
            onnx_path = export_bundled(style, cache_dir)
        write_model(repository, style.name, onnx_path, style.metadata, Target.LOCAL, policy, version=1)
        console.print(f"[green]✓[/] {style.name}: {repository / style.name}")
        names.append(style.name)
    return names
