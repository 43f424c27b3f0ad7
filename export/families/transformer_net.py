"""Johnson et al. fast style transfer ``TransformerNet``, key-compatible with pytorch/examples.

Released checkpoints (``candy.pth``, ``mosaic.pth``, ...) load with ``strict=True`` once their
legacy InstanceNorm ``running_*`` keys are dropped. Images are in [0, 255] on both sides and the
output is not clamped by the network itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from export.families.shapes import ShapeMap, shape_of


class ConvLayer(nn.Module):
    """Reflection padding of half the kernel, then a convolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with affine InstanceNorm and an identity skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.in1(self.conv1(x)))
        return self.in2(self.conv2(out)) + x


class UpsampleConvLayer(nn.Module):
    """Nearest-neighbour upsampling then a convolution (avoids transposed-conv checkerboards)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, upsample: int) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


@dataclass(frozen=True)
class TransformerNetConfig:
    """``width`` is the first layer's channel count: 32 in every released checkpoint."""

    width: int = 32


class TransformerNet(nn.Module):
    """Three downsampling convs, five residual blocks, two upsampling convs, a 9x9 output conv."""

    def __init__(self, config: TransformerNetConfig = TransformerNetConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.conv1 = ConvLayer(3, w, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(w, affine=True)
        self.conv2 = ConvLayer(w, 2 * w, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(2 * w, affine=True)
        self.conv3 = ConvLayer(2 * w, 4 * w, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(4 * w, affine=True)
        self.res1 = ResidualBlock(4 * w)
        self.res2 = ResidualBlock(4 * w)
        self.res3 = ResidualBlock(4 * w)
        self.res4 = ResidualBlock(4 * w)
        self.res5 = ResidualBlock(4 * w)
        self.deconv1 = UpsampleConvLayer(4 * w, 2 * w, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(2 * w, affine=True)
        self.deconv2 = UpsampleConvLayer(2 * w, w, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(w, affine=True)
        self.deconv3 = ConvLayer(w, 3, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def transformer_net_config_from_shapes(shapes: ShapeMap) -> TransformerNetConfig:
    """Detect the width from the first convolution: ``conv1.conv2d.weight`` is ``[width, 3, 9, 9]``."""
    return TransformerNetConfig(width=shape_of(shapes, "conv1.conv2d.weight", 4)[0])
