"""Every bundled style, exported by `make up`'s path and served by Triton, beats identity by its card's margin.

The PyTorch half of this check is in tests/training/test_bundled_styles.py; this one goes through
the exported ONNX, the repository and the running server, so broken weights, a broken export or a
broken serving path all fail here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from deploy.triton_control import TritonControl
from export.styles import BUNDLED_STYLES
from export.training.data import eval_images
from export.training.evaluation import Stylizer, evaluate
from tests.conftest import RunningStack

pytestmark = pytest.mark.integration


def triton_stylizer(triton: TritonControl, model: str) -> Stylizer:
    """One inference per image against ``model``'s live version (batch of one)."""
    return lambda image: triton.infer(model, image[None])[0][0]


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    return eval_images()


@pytest.mark.parametrize("name", sorted(BUNDLED_STYLES))
def test_served_style_beats_identity_on_held_out_photos_by_its_margin(
    name: str, stack: RunningStack, images: dict[str, np.ndarray]
) -> None:
    style = BUNDLED_STYLES[name]
    triton = TritonControl(stack.triton_http)
    try:
        evaluation = evaluate(triton_stylizer(triton, name), style.target, images)
    finally:
        triton.close()
    assert evaluation.psnr_margin >= style.margin_db, json.dumps(evaluation.to_dict(), indent=1)
    assert evaluation.ssim > evaluation.identity_ssim
    # ONNX Runtime agrees with PyTorch to a uint8 level, so the served scores are the card's.
    recorded = style.metrics()["evaluation"]
    assert evaluation.psnr == pytest.approx(recorded["psnr"], abs=0.1)
    assert evaluation.ssim == pytest.approx(recorded["ssim"], abs=0.01)
