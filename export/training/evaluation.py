"""Held-out quality of any stylizer: PSNR and SSIM against the filter target, and the identity baseline.

The stylizer is any callable from a uint8 RGB ``H×W×3`` image to one of the same shape, so the
same measurement applies to a PyTorch generator, an ONNX session or a model served by Triton.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from export.training.data import eval_images
from export.training.targets import Image, TargetFilter, check_rgb

Stylizer = Callable[[Image], Image]


@dataclass(frozen=True)
class Score:
    """PSNR (dB) and SSIM of one image against its target."""

    psnr: float
    ssim: float


def score(image: Image, target: Image) -> Score:
    """PSNR and SSIM of uint8 RGB ``image`` against ``target`` (data range 255, SSIM over colour)."""
    check_rgb(image)
    if image.shape != target.shape:
        raise ValueError(f"output shape {image.shape} differs from target shape {target.shape}")
    return Score(
        psnr=float(peak_signal_noise_ratio(target, image, data_range=255)),
        ssim=float(structural_similarity(target, image, channel_axis=2, data_range=255)),
    )


@dataclass(frozen=True)
class PhotoResult:
    """A held-out photograph's scores: the stylizer's and the identity baseline's (photo as-is)."""

    photo: str
    model: Score
    identity: Score


@dataclass(frozen=True)
class Evaluation:
    """Per-photograph results and their means; margins are model minus identity."""

    target: str
    photos: tuple[PhotoResult, ...]

    @property
    def psnr(self) -> float:
        return float(np.mean([p.model.psnr for p in self.photos]))

    @property
    def ssim(self) -> float:
        return float(np.mean([p.model.ssim for p in self.photos]))

    @property
    def identity_psnr(self) -> float:
        return float(np.mean([p.identity.psnr for p in self.photos]))

    @property
    def identity_ssim(self) -> float:
        return float(np.mean([p.identity.ssim for p in self.photos]))

    @property
    def psnr_margin(self) -> float:
        """Mean PSNR gain over the identity baseline, in dB."""
        return self.psnr - self.identity_psnr

    @property
    def min_psnr_margin(self) -> float:
        """The smallest per-photograph PSNR gain over identity, in dB."""
        return float(min(p.model.psnr - p.identity.psnr for p in self.photos))

    @property
    def ssim_margin(self) -> float:
        return self.ssim - self.identity_ssim

    def to_dict(self) -> dict[str, object]:
        """JSON-able summary with per-photograph detail."""
        return {
            "target": self.target,
            "psnr": self.psnr,
            "ssim": self.ssim,
            "identity_psnr": self.identity_psnr,
            "identity_ssim": self.identity_ssim,
            "psnr_margin": self.psnr_margin,
            "min_psnr_margin": self.min_psnr_margin,
            "ssim_margin": self.ssim_margin,
            "photos": [asdict(p) for p in self.photos],
        }


def evaluate(stylize: Stylizer, target: TargetFilter, images: Mapping[str, Image] | None = None) -> Evaluation:
    """Score ``stylize`` against ``target`` on the held-out photographs (or on ``images``)."""
    images = eval_images() if images is None else images
    return score_outputs(target, images, {name: stylize(photo) for name, photo in images.items()})


def score_outputs(target: TargetFilter, images: Mapping[str, Image], outputs: Mapping[str, Image]) -> Evaluation:
    """Score already stylised ``outputs`` (name → image) of ``images`` against ``target``."""
    results = []
    for name, photo in images.items():
        expected = target(photo)
        results.append(PhotoResult(photo=name, model=score(outputs[name], expected), identity=score(photo, expected)))
    return Evaluation(target=target.name, photos=tuple(results))


def torch_stylizer(generator: nn.Module, value_range: tuple[float, float]) -> Stylizer:
    """A family generator as a uint8 image → uint8 image function, rounding and clamping like the served graph."""
    from export.onnx_export import torch_reference

    def stylize(image: Image) -> Image:
        check_rgb(image)
        with torch.inference_mode():
            return torch_reference(generator, value_range, image[None])[0]

    return stylize
