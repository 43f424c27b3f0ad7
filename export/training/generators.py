"""Zoo generators at training widths, and the adapter that trains them all in one value range.

The trainer, losses and discriminator work in [-1, 1]; :class:`RangeAdapter` converts to and
from the family's own range around the untouched family module, whose ``state_dict`` is what
gets shipped, so the checkpoint is exactly the original codebase's format.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from export.families import FAMILIES, FamilySpec
from export.families.resnet import Norm, ResnetConfig, ResnetGenerator
from export.families.transformer_net import TransformerNet, TransformerNetConfig

CHECKPOINT_NAMES: dict[str, str] = {
    "resnet": "latest_net_G.pth",
    "transformer_net": "{style}.pth",
}
"""File names as the original codebases save them: pix2pix's ``latest_net_G.pth``,
pytorch/examples' ``<style>.pth``."""


@dataclass(frozen=True)
class GeneratorSpec:
    """Which zoo family and how wide: ``width`` is ResNet's ``ngf`` or TransformerNet's ``width``."""

    family: str
    width: int
    n_blocks: int = 6
    """Residual blocks (ResNet only; TransformerNet always has five)."""
    norm: Norm = "instance"
    """ResNet normalisation, as pix2pix's ``--norm`` (TransformerNet always uses affine InstanceNorm)."""

    def __post_init__(self) -> None:
        if self.family not in CHECKPOINT_NAMES:
            raise ValueError(f"unknown family {self.family!r}; known: {', '.join(sorted(CHECKPOINT_NAMES))}")
        if self.norm not in ("instance", "batch"):
            raise ValueError(f"norm must be instance or batch, got {self.norm!r}")
        if self.width < 1 or self.n_blocks < 1:
            raise ValueError("width and n_blocks must be positive")

    @property
    def family_spec(self) -> FamilySpec:
        """The export-facing facts about this family (value range, size multiple)."""
        return FAMILIES[self.family]

    def module_config(self) -> ResnetConfig | TransformerNetConfig:
        """The family module's own config dataclass."""
        if self.family == "resnet":
            return ResnetConfig(ngf=self.width, n_blocks=self.n_blocks, norm=self.norm)
        return TransformerNetConfig(width=self.width)

    def build(self) -> nn.Module:
        """A freshly initialised family module (seed the global RNG first for repeatability)."""
        config = self.module_config()
        if isinstance(config, ResnetConfig):
            module: nn.Module = ResnetGenerator(config)
            # pix2pix/CycleGAN initialise convolutions from N(0, 0.02); TransformerNet keeps torch defaults.
            init_normal(module)
            return module
        return TransformerNet(config)

    def checkpoint_name(self, style: str) -> str:
        """The generator checkpoint's file name in the family's convention."""
        return CHECKPOINT_NAMES[self.family].format(style=style)


def init_normal(module: nn.Module, gain: float = 0.02) -> None:
    """pix2pix ``init_weights('normal')``: conv weights ~ N(0, gain), biases zero, norm scales ~ N(1, gain)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm2d, nn.InstanceNorm2d)) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, gain)
            nn.init.zeros_(layer.bias)


class RangeAdapter(nn.Module):
    """Runs a family generator on [-1, 1] images, converting to its value range and back."""

    def __init__(self, generator: nn.Module, value_range: tuple[float, float]) -> None:
        super().__init__()
        self.generator = generator
        self.low, high = value_range
        self.half_span = (high - self.low) / 2.0

    def forward(self, x: Tensor) -> Tensor:
        y = self.generator((x + 1.0) * self.half_span + self.low)
        return (y - self.low) / self.half_span - 1.0


def to_unit_range(images: torch.Tensor) -> Tensor:
    """uint8 NHWC → float NCHW in [-1, 1]."""
    return images.permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1.0


def parameter_count(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
