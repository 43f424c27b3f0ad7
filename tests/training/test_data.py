"""The photograph split and the augmented pair sampler."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from export.photos import CALIBRATION_PHOTOS, EVALUATION_PHOTOS
from export.training.data import (
    EVAL_PHOTOS,
    EXCLUDED_PHOTOS,
    SIZE_MULTIPLE,
    TRAIN_PHOTOS,
    WORKING_SIDE,
    Augmentation,
    PairSampler,
    eval_images,
    load_photo,
)
from export.training.targets import get_target


def test_split_holds_out_the_project_evaluation_photos() -> None:
    train = {p.name for p in TRAIN_PHOTOS}
    held_out = {p.name for p in EVAL_PHOTOS}
    assert held_out == set(EVALUATION_PHOTOS)
    assert not train & held_out
    assert not (train | held_out) & set(EXCLUDED_PHOTOS)
    assert set(CALIBRATION_PHOTOS) <= train


def test_photos_load_as_rgb_uint8() -> None:
    for photo in TRAIN_PHOTOS + EVAL_PHOTOS:
        image = load_photo(photo)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, photo.name


def test_eval_images_fit_every_generator() -> None:
    for name, image in eval_images().items():
        height, width = image.shape[:2]
        assert height % SIZE_MULTIPLE == 0 and width % SIZE_MULTIPLE == 0, name
        assert WORKING_SIDE - SIZE_MULTIPLE < max(height, width) <= WORKING_SIDE, name


@pytest.mark.parametrize("name", ["watercolor", "cartoon"])
def test_crops_match_the_filter_applied_to_the_whole_augmented_photo(name: str) -> None:
    target = get_target(name)
    sampler = PairSampler(target, Augmentation(crop=64, min_side=256, max_side=320), photos=TRAIN_PHOTOS[:1])
    image = sampler.rescaled(TRAIN_PHOTOS[0], 256)
    assert max(image.shape[:2]) == 256
    channels = (2, 0, 1)
    whole = target(np.ascontiguousarray(image[:, ::-1, list(channels)]))
    for top, left in [(0, 0), (40, 70), (image.shape[0] - 64, image.shape[1] - 64)]:
        crop, rendered = sampler.render_crop(image, top, left, mirrored=True, channels=channels)
        mirrored_left = image.shape[1] - left - 64
        np.testing.assert_array_equal(crop, image[top : top + 64, left : left + 64, list(channels)][:, ::-1])
        expected = whole[top : top + 64, mirrored_left : mirrored_left + 64]
        assert peak_signal_noise_ratio(expected, rendered, data_range=255) > 50


def test_sampler_is_seeded_and_restorable() -> None:
    target = get_target("cartoon")
    photos = TRAIN_PHOTOS[:2]
    augmentation = Augmentation(crop=32, min_side=160, max_side=192)
    a = PairSampler(target, augmentation, photos=photos, seed=7)
    b = PairSampler(target, augmentation, photos=photos, seed=7)
    first = a.batch(2)
    assert first[0].shape == first[1].shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(first[0], b.batch(2)[0])
    state = a.rng_state()
    following = a.batch(2)
    b.set_rng_state(state)
    np.testing.assert_array_equal(following[1], b.batch(2)[1])


def test_small_photographs_are_enlarged_to_fit_the_crop() -> None:
    page = next(p for p in TRAIN_PHOTOS if p.name == "page")
    sampler = PairSampler(get_target("cartoon"), Augmentation(crop=256, min_side=320, max_side=320), photos=(page,))
    assert min(sampler.rescaled(page, 320).shape[:2]) >= 256


def test_inconsistent_augmentation_is_rejected() -> None:
    with pytest.raises(ValueError, match="min_side"):
        PairSampler(get_target("cartoon"), Augmentation(crop=400, min_side=320))
