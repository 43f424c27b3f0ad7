"""The target filters: deterministic, shape-preserving, distinct looks, clear errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from export.training.data import eval_images
from export.training.targets import TARGETS, get_target


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return eval_images(side=256)["coffee"]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_is_deterministic_across_calls_and_thread_counts(name: str, photo: np.ndarray) -> None:
    target = get_target(name)
    first = target(photo)
    again = target(photo.copy())
    previous = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        threaded = target(photo)
    finally:
        cv2.setNumThreads(previous)
    assert first.dtype == np.uint8 and first.shape == photo.shape
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, threaded)


def test_targets_are_distinct_looks(photo: np.ndarray) -> None:
    renders = {name: target(photo).astype(np.int16) for name, target in TARGETS.items()}
    names = sorted(renders)
    for i, a in enumerate(names):
        assert np.abs(renders[a] - photo).mean() > 8, f"{a} barely changes the photo"
        for b in names[i + 1 :]:
            assert np.abs(renders[a] - renders[b]).mean() > 8, f"{a} and {b} look alike"


@pytest.mark.parametrize(
    "bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32)]
)
def test_target_rejects_non_rgb_uint8(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        get_target("cartoon")(bad)


def test_unknown_target_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="watercolor"):
        get_target("oil")
