"""CycleGAN / pix2pix ``ResnetGenerator``, key-for-key compatible with released checkpoints.

Layer order and module indices follow the original ``model.N.*`` layout, so a
``latest_net_G_A.pth`` loads with ``strict=True``. Images are in [-1, 1] on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

Norm = Literal["instance", "batch"]


def norm_layer(kind: Norm, channels: int) -> nn.Module:
    """The original's norm choice: InstanceNorm without affine/stats, or BatchNorm with both."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with a skip connection."""

    def __init__(self, dim: int, norm: Norm, use_dropout: bool, use_bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(norm, dim),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(norm, dim),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


@dataclass(frozen=True)
class ResnetConfig:
    """Hyper-parameters that change the key set or shapes of a ``ResnetGenerator``."""

    ngf: int = 64
    n_blocks: int = 9
    norm: Norm = "instance"
    use_dropout: bool = False
    input_nc: int = 3
    output_nc: int = 3


class ResnetGenerator(nn.Module):
    """Downsample twice, ``n_blocks`` residual blocks, upsample twice; tanh output in [-1, 1]."""

    def __init__(self, config: ResnetConfig = ResnetConfig()) -> None:
        super().__init__()
        self.config = config
        ngf, norm = config.ngf, config.norm
        # The original only gives convolutions a bias when the norm has no affine shift.
        use_bias = norm == "instance"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(config.input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                norm_layer(norm, ngf * mult * 2),
                nn.ReLU(True),
            ]
        for _ in range(config.n_blocks):
            layers.append(ResnetBlock(ngf * 4, norm, config.use_dropout, use_bias))
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult,
                    ngf * mult // 2,
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                    bias=use_bias,
                ),
                norm_layer(norm, ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, config.output_nc, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
