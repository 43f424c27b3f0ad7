"""Tiny generators of every family, saved the way their original code saves them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from export.families import FAMILIES, AnimeGanConfig, ResnetConfig, TransformerNetConfig, UnetConfig

# Tiny widths keep the suite inside its time budget; the key layout is the full one.
TINY_CONFIGS: dict[str, Any] = {
    "resnet": ResnetConfig(ngf=4, n_blocks=2),
    "unet_256": UnetConfig(num_downs=8, ngf=2, norm="batch"),
    "unet_128": UnetConfig(num_downs=7, ngf=2, norm="instance"),
    "animegan": AnimeGanConfig(),
    "transformer_net": TransformerNetConfig(width=4),
}


def tiny_generator(family: str, seed: int = 0, **overrides: Any) -> nn.Module:
    """A randomly initialised generator of ``family`` with a tiny config, in eval mode."""
    import dataclasses

    torch.manual_seed(seed)
    config = dataclasses.replace(TINY_CONFIGS[family], **overrides)
    module = FAMILIES[family].instantiate(config)
    for name, buffer in module.named_buffers():
        # Non-trivial BatchNorm statistics, so that loading them wrongly would show.
        if name.endswith("running_mean"):
            buffer.normal_(0.0, 0.1)
        elif name.endswith("running_var"):
            buffer.uniform_(0.5, 1.5)
    return module


def save_original(module: nn.Module, path: Path) -> Path:
    """What every family's original training code writes: ``torch.save(net.state_dict(), path)``."""
    torch.save(module.state_dict(), path)
    return path


@dataclass
class CliExport:
    """One ``pastiche export`` run of a tiny checkpoint saved in its family's original format."""

    family: str
    checkpoint: Path
    out: Path
    exit_code: int
    output: str

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.out / "report.json").read_text())


# Per-family CLI arguments: small images keep the suite fast; resnet also gets an INT8 gate it cannot
# pass, to exercise rejection, margins and --strict; unet_256 gets per-image batch statistics.
CLI_RUNS: dict[str, list[str]] = {
    "resnet": ["--int8-min-psnr", "99", "--strict", "--engines"],
    "unet_256": ["--batchnorm-stats", "per-image"],
    "unet_128": [],
    "animegan": ["--no-align-corners", "--calibration", "percentile"],
    "transformer_net": ["--calibration", "minmax", "--title", "Candy", "--description", "Johnson candy"],
}


def original_checkpoint(family: str, directory: Path) -> Path:
    """The tiny generator saved the way its original code (or an old release of it) saves it."""
    module = tiny_generator(family)
    state = module.state_dict()
    if family == "resnet":
        # Trained with DataParallel: every key carries "module.".
        path = directory / "latest_net_G_A.pth"
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
        return path
    if family == "transformer_net":
        # Released before PyTorch 0.4: InstanceNorm layers carry running statistics.
        path = directory / "candy.pth"
        legacy = {
            f"{name}.running_mean": torch.zeros(len(m.weight))
            for name, m in module.named_modules()
            if isinstance(m, torch.nn.InstanceNorm2d)
        }
        torch.save(state | legacy, path)
        return path
    names = {"unet_256": "latest_net_G.pth", "unet_128": "latest_net_G.pth", "animegan": "face_paint_512_v2.pt"}
    return save_original(module, directory / names[family])
