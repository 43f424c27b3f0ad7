"""AnimeGANv2 generator, key-for-key compatible with bryandlee/animegan2-pytorch weights.

``face_paint_512_v1.pt``, ``face_paint_512_v2.pt``, ``celeba_distill.pt`` and ``paprika.pt``
are plain state_dicts of this layout (``block_a.0.1.weight`` …, ``out_layer.0.weight``).
Every convolution is followed by ``GroupNorm(1, C)`` and LeakyReLU(0.2); the decoder upsamples
bilinearly. Images are in [-1, 1] on both sides.

The upsampling mode is not stored in the weights but changes the output: the original forward
defaults to resizing back to the encoder's exact sizes with ``align_corners=True`` (the
``torch.hub`` / ``face2paint`` path), while its ``test.py`` defaults to ``scale_factor=2`` with
``align_corners=False`` (closer to the TensorFlow models the weights were converted from).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from export.families.shapes import FamilyMismatch, ShapeMap, shape_of

Padding = int | tuple[int, int, int, int]


class ConvNormLReLU(nn.Sequential):
    """Reflection pad, convolution, ``GroupNorm(1)``, LeakyReLU(0.2): indices 0..3 as in the original."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: Padding = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__(
            nn.ReflectionPad2d(padding),
            nn.Conv2d(in_ch, out_ch, kernel_size=kernel_size, stride=stride, padding=0, groups=groups, bias=bias),
            nn.GroupNorm(num_groups=1, num_channels=out_ch, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
        )


class InvertedResBlock(nn.Module):
    """MobileNetV2-style block: 1x1 expand, 3x3 depthwise, 1x1 project; residual when shapes agree."""

    def __init__(self, in_ch: int, out_ch: int, expansion_ratio: float = 2) -> None:
        super().__init__()
        self.use_res_connect = in_ch == out_ch
        bottleneck = round(in_ch * expansion_ratio)
        layers: list[nn.Module] = []
        if expansion_ratio != 1:
            layers.append(ConvNormLReLU(in_ch, bottleneck, kernel_size=1, padding=0))
        layers += [
            ConvNormLReLU(bottleneck, bottleneck, groups=bottleneck, bias=True),
            nn.Conv2d(bottleneck, out_ch, kernel_size=1, padding=0, bias=False),
            nn.GroupNorm(num_groups=1, num_channels=out_ch, affine=True),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.layers(x)
        return x + out if self.use_res_connect else out


@dataclass(frozen=True)
class AnimeGanConfig:
    """Released AnimeGANv2 weights share one fixed architecture; only the upsampling choice varies."""

    align_corners: bool = True
    """True: the original forward's default (torch.hub, face2paint). False: its ``test.py`` default."""


# Stride-2 convolutions pad only right and bottom, like TensorFlow's "SAME" padding.
_SAME_STRIDE2: Padding = (0, 1, 0, 1)


class AnimeGanGenerator(nn.Module):
    """Encoder (two stride-2 stages), four inverted residual blocks, bilinear decoder, tanh output."""

    def __init__(self, config: AnimeGanConfig = AnimeGanConfig()) -> None:
        super().__init__()
        self.config = config
        self.block_a = nn.Sequential(
            ConvNormLReLU(3, 32, kernel_size=7, padding=3),
            ConvNormLReLU(32, 64, stride=2, padding=_SAME_STRIDE2),
            ConvNormLReLU(64, 64),
        )
        self.block_b = nn.Sequential(
            ConvNormLReLU(64, 128, stride=2, padding=_SAME_STRIDE2),
            ConvNormLReLU(128, 128),
        )
        self.block_c = nn.Sequential(
            ConvNormLReLU(128, 128),
            InvertedResBlock(128, 256, 2),
            InvertedResBlock(256, 256, 2),
            InvertedResBlock(256, 256, 2),
            InvertedResBlock(256, 256, 2),
            ConvNormLReLU(256, 128),
        )
        self.block_d = nn.Sequential(
            ConvNormLReLU(128, 128),
            ConvNormLReLU(128, 128),
        )
        self.block_e = nn.Sequential(
            ConvNormLReLU(128, 64),
            ConvNormLReLU(64, 64),
            ConvNormLReLU(64, 32, kernel_size=7, padding=3),
        )
        self.out_layer = nn.Sequential(
            nn.Conv2d(32, 3, kernel_size=1, stride=1, padding=0, bias=False),
            nn.Tanh(),
        )

    def _upsample(self, x: Tensor, like: Tensor) -> Tensor:
        if self.config.align_corners:
            return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=True)
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        half = self.block_a(x)
        out = self.block_c(self.block_b(half))
        out = self.block_d(self._upsample(out, half))
        out = self.block_e(self._upsample(out, x))
        return self.out_layer(out)


def animegan_config_from_shapes(shapes: ShapeMap, align_corners: bool = True) -> AnimeGanConfig:
    """Recognise the fixed AnimeGANv2 layout by its first and last convolutions.

    ``align_corners`` cannot be read from weights; it is the caller's serving choice.
    """
    first = shape_of(shapes, "block_a.0.1.weight", 4)
    last = shape_of(shapes, "out_layer.0.weight", 4)
    if first != (32, 3, 7, 7) or last != (3, 32, 1, 1):
        raise FamilyMismatch(
            f"block_a.0.1.weight {list(first)} / out_layer.0.weight {list(last)} differ from AnimeGANv2"
        )
    return AnimeGanConfig(align_corners=align_corners)
