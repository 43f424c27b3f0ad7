"""Image-quality gates: does a reduced-precision variant still produce the FP32 model's pictures?

Each variant's output on held-out photographs is compared with the FP32 export's output on the
same photographs (PSNR and SSIM from scikit-image, per image). A gate passes when the *worst*
image clears the threshold, so one badly broken photo cannot hide behind a good mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


class GateThresholds(BaseModel):
    """Minimum quality per precision; ``None`` disables that gate."""

    model_config = ConfigDict(frozen=True)

    fp16_min_psnr: float | None = 40.0
    fp16_min_ssim: float | None = None
    int8_min_psnr: float | None = 30.0
    int8_min_ssim: float | None = 0.95

    def for_precision(self, precision: str) -> dict[str, float]:
        """``{"psnr": dB, "ssim": value}`` thresholds that apply to ``precision``."""
        values = {
            "psnr": getattr(self, f"{precision}_min_psnr", None),
            "ssim": getattr(self, f"{precision}_min_ssim", None),
        }
        return {metric: value for metric, value in values.items() if value is not None}


class ImageScore(BaseModel):
    """One photograph's similarity to the FP32 output."""

    name: str
    psnr: float
    """dB; infinite when identical."""
    ssim: float


class Summary(BaseModel):
    """Minimum and mean of a metric over the evaluation photographs."""

    min: float
    mean: float


class GateResult(BaseModel):
    """One threshold checked against the worst image."""

    metric: str
    threshold: float
    measured: float
    """The worst image's value."""
    passed: bool
    margin: float
    """``measured - threshold``: how far above (positive) or below (negative) the gate."""


def score_image(name: str, reference: np.ndarray, candidate: np.ndarray) -> ImageScore:
    """PSNR and SSIM of one uint8 ``[H, W, 3]`` output against the FP32 reference."""
    if reference.shape != candidate.shape:
        raise ValueError(f"{name}: output shape {candidate.shape} differs from the reference {reference.shape}")
    identical = np.array_equal(reference, candidate)
    psnr = float("inf") if identical else float(peak_signal_noise_ratio(reference, candidate, data_range=255))
    ssim = 1.0 if identical else float(structural_similarity(reference, candidate, channel_axis=2, data_range=255))
    return ImageScore(name=name, psnr=psnr, ssim=ssim)


def score_batch(names: Sequence[str], reference: np.ndarray, candidate: np.ndarray) -> list[ImageScore]:
    """Scores for each image of uint8 ``[N, H, W, 3]`` batches."""
    return [score_image(name, ref, cand) for name, ref, cand in zip(names, reference, candidate, strict=True)]


def summarize(scores: Sequence[ImageScore], metric: str) -> Summary:
    """Min and mean of ``metric`` ("psnr" or "ssim") over ``scores``."""
    values = np.array([getattr(score, metric) for score in scores], dtype=np.float64)
    finite = values[np.isfinite(values)]
    # A mean over identical images is infinite; over a mix, report the mean of the finite ones.
    mean = float(finite.mean()) if finite.size else float(values.mean())
    return Summary(min=float(values.min()), mean=mean)


def check_gates(scores: Sequence[ImageScore], thresholds: dict[str, float]) -> list[GateResult]:
    """Each threshold against the worst image's value."""
    results = []
    for metric, threshold in thresholds.items():
        worst = summarize(scores, metric).min
        results.append(
            GateResult(
                metric=metric,
                threshold=threshold,
                measured=worst,
                passed=bool(worst >= threshold),
                margin=worst - threshold,
            )
        )
    return results
