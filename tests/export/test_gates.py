"""PSNR/SSIM scoring and gate decisions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from export.gates import GateThresholds, check_gates, score_batch, score_image, summarize
from export.photos import batch_of, evaluation_photos


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return batch_of(evaluation_photos(2), 64)


def test_identical_images_score_infinite_psnr_and_pass(photos: np.ndarray) -> None:
    score = score_image("same", photos[0], photos[0])
    assert math.isinf(score.psnr) and score.ssim == 1.0
    assert all(gate.passed for gate in check_gates([score], {"psnr": 40.0, "ssim": 0.99}))


def test_one_level_noise_scores_about_48_db(photos: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    noisy = np.clip(photos[0].astype(int) + rng.choice([-1, 1], photos[0].shape), 0, 255).astype(np.uint8)
    score = score_image("noisy", photos[0], noisy)
    # Every value off by exactly one level (except clipped ones): MSE ~1, PSNR ~ 20*log10(255) = 48.1 dB.
    assert 48.0 < score.psnr < 48.5
    assert 0.95 < score.ssim < 1.0


def test_gate_uses_the_worst_image_and_reports_the_margin(photos: np.ndarray) -> None:
    degraded = photos.copy()
    degraded[1] = (degraded[1] // 16) * 16  # posterize the second image only
    scores = score_batch(["a", "b"], photos, degraded)
    summary = summarize(scores, "psnr")
    assert math.isinf(scores[0].psnr)
    assert summary.min == scores[1].psnr and summary.mean == scores[1].psnr
    (gate,) = check_gates(scores, {"psnr": 40.0})
    assert not gate.passed
    assert gate.measured == pytest.approx(scores[1].psnr)
    assert gate.margin == pytest.approx(scores[1].psnr - 40.0)


def test_shape_mismatch_is_an_error(photos: np.ndarray) -> None:
    with pytest.raises(ValueError, match="differs from the reference"):
        score_image("x", photos[0], photos[0][:32])


def test_default_thresholds_per_precision() -> None:
    thresholds = GateThresholds()
    assert thresholds.for_precision("fp16") == {"psnr": 40.0}
    assert thresholds.for_precision("int8") == {"psnr": 30.0, "ssim": 0.95}
    assert GateThresholds(int8_min_ssim=None).for_precision("int8") == {"psnr": 30.0}
