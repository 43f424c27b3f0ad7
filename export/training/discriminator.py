"""Conditional PatchGAN discriminator (pix2pix ``NLayerDiscriminator`` layout).

It judges overlapping patches of ``concat(photo, stylised)`` rather than the whole image, so it
scores local texture — what a stylisation filter changes — and works at any input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass(frozen=True)
class DiscriminatorConfig:
    """``ndf`` channels in the first layer, doubling (up to ×8) over ``n_layers`` strided layers.

    With ``spectral_norm`` every convolution is spectrally normalised and there are no
    normalisation layers (as in SN-GAN: an InstanceNorm would rescale activations by 1/std and undo
    the Lipschitz bound); without it, pix2pix's InstanceNorm follows each inner convolution.
    """

    ndf: int = 32
    n_layers: int = 3
    spectral_norm: bool = True
    input_nc: int = 6
    """Photo and candidate stylisation, concatenated on channels (conditional GAN)."""


class PatchDiscriminator(nn.Module):
    """4×4 convolutions: ``n_layers`` stride-2 layers (the last one stride 1), then a 1-channel patch map."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()) -> None:
        super().__init__()
        self.config = config

        def conv(cin: int, cout: int, stride: int) -> nn.Module:
            layer = nn.Conv2d(cin, cout, kernel_size=4, stride=stride, padding=1)
            return spectral_norm(layer) if config.spectral_norm else layer

        ndf = config.ndf
        layers: list[nn.Module] = [conv(config.input_nc, ndf, 2), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, config.n_layers + 1):
            previous, mult = mult, min(2**n, 8)
            stride = 2 if n < config.n_layers else 1
            layers.append(conv(ndf * previous, ndf * mult, stride))
            if not config.spectral_norm:
                layers.append(nn.InstanceNorm2d(ndf * mult))
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(conv(ndf * mult, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, photo: Tensor, candidate: Tensor) -> Tensor:
        """Patch realism scores for ``candidate`` as a stylisation of ``photo`` (both in [-1, 1])."""
        return self.model(torch.cat([photo, candidate], dim=1))
