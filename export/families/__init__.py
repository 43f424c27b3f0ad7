"""The generator zoo: one module per architecture family, plus what the export needs to know.

A :class:`FamilySpec` tells the export how to wrap a family into the served uint8 contract
(its image value range), what sizes it accepts (its size multiple), the resolution it was
trained for, how to build it from a config, and how to read that config off a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from export.families.animegan import AnimeGanConfig, AnimeGanGenerator, animegan_config_from_shapes
from export.families.resnet import ResnetConfig, ResnetGenerator, resnet_config_from_shapes
from export.families.shapes import FamilyMismatch, ShapeMap
from export.families.transformer_net import (
    TransformerNet,
    TransformerNetConfig,
    transformer_net_config_from_shapes,
)
from export.families.unet import UnetConfig, UnetGenerator, unet_config_from_shapes

__all__ = [
    "ANIMEGAN",
    "FAMILIES",
    "RESNET",
    "TRANSFORMER_NET",
    "UNET_128",
    "UNET_256",
    "AnimeGanConfig",
    "FamilyMismatch",
    "FamilySpec",
    "ResnetConfig",
    "ShapeMap",
    "TransformerNetConfig",
    "UnetConfig",
    "build_seeded_resnet",
]


@dataclass(frozen=True)
class FamilySpec:
    """Facts about an architecture family that the export and serving layers depend on."""

    name: str
    value_range: tuple[float, float]
    """Pixel range the generator consumes and produces: (-1, 1) for tanh models, (0, 255) for Johnson."""
    size_multiple: int
    """H and W must be multiples of this for the output to have the input's size."""
    preferred_side: int
    """The resolution the family's released checkpoints were trained at (or look best at)."""
    origin: str
    """Where checkpoints of this family come from, for messages and reports."""
    default_config: Any
    build: Callable[[Any], nn.Module]
    """Instantiate the generator (random weights, eval mode) for a config of this family."""
    detect: Callable[[ShapeMap], Any]
    """Read the config off ``{key: shape}``; raises :class:`FamilyMismatch` when the keys don't fit."""

    def instantiate(self, config: Any = None) -> nn.Module:
        """A fresh generator in eval mode for ``config`` (the family default when omitted)."""
        return self.build(self.default_config if config is None else config).eval()


def _unet_detector(num_downs: int) -> Callable[[ShapeMap], UnetConfig]:
    def detect(shapes: ShapeMap) -> UnetConfig:
        config = unet_config_from_shapes(shapes)
        if config.num_downs != num_downs:
            raise FamilyMismatch(f"{config.num_downs} nested blocks, unet_{2**num_downs} has {num_downs}")
        return config

    return detect


RESNET = FamilySpec(
    name="resnet",
    value_range=(-1.0, 1.0),
    size_multiple=4,
    preferred_side=512,
    origin="junyanz/pytorch-CycleGAN-and-pix2pix ResnetGenerator (latest_net_G_A.pth, latest_net_G.pth)",
    default_config=ResnetConfig(),
    build=ResnetGenerator,
    detect=resnet_config_from_shapes,
)

UNET_256 = FamilySpec(
    name="unet_256",
    value_range=(-1.0, 1.0),
    size_multiple=256,
    preferred_side=256,
    origin="junyanz/pytorch-CycleGAN-and-pix2pix UnetGenerator --netG unet_256 (latest_net_G.pth)",
    default_config=UnetConfig(num_downs=8),
    build=UnetGenerator,
    detect=_unet_detector(8),
)

UNET_128 = FamilySpec(
    name="unet_128",
    value_range=(-1.0, 1.0),
    size_multiple=128,
    preferred_side=128,
    origin="junyanz/pytorch-CycleGAN-and-pix2pix UnetGenerator --netG unet_128 (latest_net_G.pth)",
    default_config=UnetConfig(num_downs=7),
    build=UnetGenerator,
    detect=_unet_detector(7),
)

# Any size works with align_corners=True, but two stride-2 "SAME" convolutions drop a row on odd
# sizes and the scale_factor=2 decoder only restores the input size for multiples of 4.
ANIMEGAN = FamilySpec(
    name="animegan",
    value_range=(-1.0, 1.0),
    size_multiple=4,
    preferred_side=512,
    origin="bryandlee/animegan2-pytorch Generator (face_paint_512_v2.pt, paprika.pt, celeba_distill.pt)",
    default_config=AnimeGanConfig(),
    build=AnimeGanGenerator,
    detect=animegan_config_from_shapes,
)

TRANSFORMER_NET = FamilySpec(
    name="transformer_net",
    value_range=(0.0, 255.0),
    size_multiple=4,
    preferred_side=512,
    origin="pytorch/examples fast_neural_style TransformerNet (candy.pth, mosaic.pth, udnie.pth, rain_princess.pth)",
    default_config=TransformerNetConfig(),
    build=TransformerNet,
    detect=transformer_net_config_from_shapes,
)

FAMILIES: dict[str, FamilySpec] = {spec.name: spec for spec in (RESNET, UNET_256, UNET_128, ANIMEGAN, TRANSFORMER_NET)}


def build_seeded_resnet(ngf: int = 16, n_blocks: int = 6, seed: int = 0) -> nn.Module:
    """A ``ResnetGenerator`` with deterministic weights, for tests and as a placeholder style."""
    import torch

    torch.manual_seed(seed)
    return ResnetGenerator(ResnetConfig(ngf=ngf, n_blocks=n_blocks)).eval()
