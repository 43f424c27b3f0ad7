"""pix2pix ``UnetGenerator`` (``unet_128`` / ``unet_256``), key-for-key compatible with released checkpoints.

The network is built recursively from the innermost block outwards, exactly like the original,
so the nested ``model.model.1.model.3.model.3…`` keys of a ``latest_net_G.pth`` line up and
load with ``strict=True``. Every block halves H and W on the way down and concatenates its
input as a skip connection on the way up, so H and W must be multiples of ``2**num_downs``
(128 for ``unet_128``, 256 for ``unet_256``). Images are in [-1, 1] on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from export.families.normalization import BatchStats, Norm, norm_layer
from export.families.shapes import FamilyMismatch, ShapeMap, shape_of


@dataclass(frozen=True)
class UnetConfig:
    """Hyper-parameters that change the key set or shapes of a ``UnetGenerator``."""

    num_downs: int = 8
    """7 for ``unet_128``, 8 for ``unet_256``: the bottleneck is 1x1 at that input size."""
    ngf: int = 64
    norm: Norm = "batch"
    use_dropout: bool = False
    """Dropout sits after the block's last layer, so it does not shift keys; it is inert when served."""
    input_nc: int = 3
    output_nc: int = 3
    batch_stats: BatchStats = "running"
    """Serving choice for batch-norm checkpoints; does not change keys (see ``normalization``)."""

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this for the skip connections to line up."""
        return 2**self.num_downs


class UnetSkipConnectionBlock(nn.Module):
    """Down-convolution, the inner submodule, up-convolution; non-outermost blocks concat their input.

    Module indices inside ``self.model`` follow the original list order:
    outermost ``[downconv, submodule, uprelu, upconv, tanh]``,
    innermost ``[downrelu, downconv, uprelu, upconv, upnorm]``,
    others ``[downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm(, dropout)]``.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        config: UnetConfig,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        # The original only gives convolutions a bias when the norm has no affine shift.
        use_bias = config.norm == "instance"
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        layers: list[nn.Module]
        if outermost:
            assert submodule is not None
            layers = [
                downconv,
                submodule,
                nn.ReLU(True),
                nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1),
                nn.Tanh(),
            ]
        elif innermost:
            layers = [
                nn.LeakyReLU(0.2, True),
                downconv,
                nn.ReLU(True),
                nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias),
                norm_layer(config.norm, outer_nc, config.batch_stats),
            ]
        else:
            assert submodule is not None
            layers = [
                nn.LeakyReLU(0.2, True),
                downconv,
                norm_layer(config.norm, inner_nc, config.batch_stats),
                submodule,
                nn.ReLU(True),
                nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias),
                norm_layer(config.norm, outer_nc, config.batch_stats),
            ]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """``num_downs`` nested skip blocks: ``ngf*8`` channels in the inner ones, tapering to ``ngf`` outside."""

    def __init__(self, config: UnetConfig = UnetConfig()) -> None:
        super().__init__()
        if config.num_downs < 5:
            raise ValueError(f"a UnetGenerator needs num_downs >= 5, got {config.num_downs}")
        self.config = config
        ngf = config.ngf
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, config, innermost=True)
        for _ in range(config.num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, config, submodule=block, use_dropout=config.use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, config, submodule=block)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, config, submodule=block)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, config, submodule=block)
        self.model = UnetSkipConnectionBlock(
            config.output_nc, ngf, config, input_nc=config.input_nc, submodule=block, outermost=True
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def unet_config_from_shapes(shapes: ShapeMap) -> UnetConfig:
    """Detect num_downs, ngf, norm and channel counts from a checkpoint's key shapes."""
    ngf, input_nc = shape_of(shapes, "model.model.0.weight", 4)[:2]
    output_nc = shape_of(shapes, "model.model.3.weight", 4)[1]
    # Each nested block lives under its parent's submodule slot: index 1 in the outermost, 3 elsewhere.
    num_downs, prefix = 1, "model.model.1.model."
    while any(key.startswith(prefix) for key in shapes):
        num_downs += 1
        prefix += "3.model."
    if num_downs < 5:
        raise FamilyMismatch(f"only {num_downs} nested blocks under model.model.*, a UnetGenerator has at least 5")
    norm: Norm = "batch" if "model.model.1.model.2.weight" in shapes else "instance"
    return UnetConfig(num_downs=num_downs, ngf=ngf, norm=norm, input_nc=input_nc, output_nc=output_nc)
