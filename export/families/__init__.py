"""The generator zoo: one module per architecture family, plus what the export needs to know.

A :class:`FamilySpec` tells the export how to wrap a family into the served uint8 contract
(its image value range) and what sizes it accepts (its size multiple).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from export.families.resnet import ResnetConfig, ResnetGenerator
from export.families.transformer_net import TransformerNet, TransformerNetConfig


@dataclass(frozen=True)
class FamilySpec:
    """Facts about an architecture family that the export and serving layers depend on."""

    name: str
    value_range: tuple[float, float]
    """Pixel range the generator consumes and produces: (-1, 1) for tanh models, (0, 255) for Johnson."""
    size_multiple: int
    """H and W must be multiples of this for the output to have the input's size."""
    preferred_side: int


RESNET = FamilySpec(name="resnet", value_range=(-1.0, 1.0), size_multiple=4, preferred_side=512)

TRANSFORMER_NET = FamilySpec(name="transformer_net", value_range=(0.0, 255.0), size_multiple=4, preferred_side=512)

FAMILIES: dict[str, FamilySpec] = {spec.name: spec for spec in (RESNET, TRANSFORMER_NET)}


def build_seeded_resnet(ngf: int = 16, n_blocks: int = 6, seed: int = 0) -> nn.Module:
    """A ``ResnetGenerator`` with deterministic weights, for tests and as a placeholder style."""
    import torch

    torch.manual_seed(seed)
    return ResnetGenerator(ResnetConfig(ngf=ngf, n_blocks=n_blocks)).eval()
