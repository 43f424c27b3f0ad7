"""Tiny generators of every family, saved the way their original code saves them."""

from __future__ import annotations

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
