"""CycleGAN / pix2pix ``ResnetGenerator``, key-for-key compatible with released checkpoints.

Layer order and module indices follow the original ``model.N.*`` layout, so a
``latest_net_G_A.pth`` loads with ``strict=True``. Images are in [-1, 1] on both sides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import Tensor, nn

from export.families.normalization import BatchStats, Norm, norm_layer
from export.families.shapes import FamilyMismatch, ShapeMap, shape_of

__all__ = ["Norm", "ResnetBlock", "ResnetConfig", "ResnetGenerator", "norm_layer", "resnet_config_from_shapes"]

_BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.")


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with a skip connection."""

    def __init__(
        self, dim: int, norm: Norm, use_dropout: bool, use_bias: bool, batch_stats: BatchStats = "running"
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(norm, dim, batch_stats),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(norm, dim, batch_stats),
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
    batch_stats: BatchStats = "running"
    """Serving choice for batch-norm checkpoints; does not change keys (see ``normalization``)."""


class ResnetGenerator(nn.Module):
    """Downsample twice, ``n_blocks`` residual blocks, upsample twice; tanh output in [-1, 1]."""

    def __init__(self, config: ResnetConfig = ResnetConfig()) -> None:
        super().__init__()
        self.config = config
        ngf, norm, stats = config.ngf, config.norm, config.batch_stats
        # The original only gives convolutions a bias when the norm has no affine shift.
        use_bias = norm == "instance"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(config.input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(norm, ngf, stats),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                norm_layer(norm, ngf * mult * 2, stats),
                nn.ReLU(True),
            ]
        for _ in range(config.n_blocks):
            layers.append(ResnetBlock(ngf * 4, norm, config.use_dropout, use_bias, stats))
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
                norm_layer(norm, ngf * mult // 2, stats),
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


def resnet_config_from_shapes(shapes: ShapeMap) -> ResnetConfig:
    """Detect ngf, n_blocks, norm, dropout and channel counts from a checkpoint's key shapes."""
    ngf, input_nc = shape_of(shapes, "model.1.weight", 4)[:2]
    blocks = sorted({int(m.group(1)) for key in shapes if (m := _BLOCK_KEY.match(key))})
    if not blocks:
        raise FamilyMismatch("no residual blocks (model.N.conv_block.*)")
    norm: Norm = "batch" if "model.2.weight" in shapes else "instance"
    # Dropout sits between the two convolutions, moving the second one from index 5 to 6.
    use_dropout = len(shapes.get(f"model.{blocks[0]}.conv_block.6.weight", ())) == 4
    output_nc = shape_of(shapes, f"model.{blocks[-1] + 8}.weight", 4)[0]
    return ResnetConfig(
        ngf=ngf, n_blocks=len(blocks), norm=norm, use_dropout=use_dropout, input_nc=input_nc, output_nc=output_nc
    )
