"""The held-out metric shared by the PyTorch and the served checks."""

from __future__ import annotations

import numpy as np
import pytest

from export.training.data import eval_images
from export.training.evaluation import evaluate, score
from export.training.targets import get_target


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    return {name: image for name, image in eval_images(side=128).items()}


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_perfect_stylizer_scores_infinite_psnr_and_unit_ssim(images: dict[str, np.ndarray]) -> None:
    target = get_target("cartoon")
    evaluation = evaluate(target, target, images)
    assert evaluation.psnr == float("inf")
    assert evaluation.ssim == pytest.approx(1.0)
    assert evaluation.psnr_margin > 0


def test_identity_stylizer_has_zero_margin(images: dict[str, np.ndarray]) -> None:
    evaluation = evaluate(lambda image: image, get_target("watercolor"), images)
    assert evaluation.psnr_margin == 0.0 and evaluation.ssim_margin == 0.0
    assert [p.photo for p in evaluation.photos] == list(images)
    assert evaluation.to_dict()["photos"][0]["identity"]["psnr"] == evaluation.photos[0].identity.psnr


def test_worse_output_scores_lower() -> None:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    close = np.clip(target.astype(int) + rng.integers(-3, 4, target.shape), 0, 255).astype(np.uint8)
    far = np.clip(target.astype(int) + rng.integers(-40, 41, target.shape), 0, 255).astype(np.uint8)
    assert score(close, target).psnr > score(far, target).psnr
    assert score(close, target).ssim > score(far, target).ssim


def test_output_of_the_wrong_size_is_an_error(images: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="shape"):
        evaluate(lambda image: image[:-4], get_target("pencil"), images)
