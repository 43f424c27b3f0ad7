"""Normalization layers as the pix2pix/CycleGAN code builds them, plus a per-image BatchNorm.

``PerImageBatchNorm`` keeps BatchNorm's parameters and buffers (so checkpoints load unchanged)
but normalizes each image with its own statistics. That is what pix2pix's ``test.py`` computes
when run without ``--eval`` at batch size 1, made independent of how Triton batches requests.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

Norm = Literal["instance", "batch"]
BatchStats = Literal["running", "per_image"]
"""Which statistics a BatchNorm uses when served: the stored running ones (``--eval``) or each image's own."""


class PerImageBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose forward uses each image's own mean and variance, never the batch's."""

    def forward(self, x: Tensor) -> Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, use_input_stats=True, eps=self.eps)


def norm_layer(kind: Norm, channels: int, batch_stats: BatchStats = "running") -> nn.Module:
    """The original's norm choice: InstanceNorm without affine/stats, or BatchNorm with both."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if batch_stats == "per_image":
        return PerImageBatchNorm(channels, affine=True, track_running_stats=True)
    return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
