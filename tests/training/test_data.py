"""The photograph split and the augmented pair sampler."""

from __future__ import annotations

import numpy as np

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


def test_split_is_disjoint_and_excludes_scene_twins() -> None:
    train = {(p.loader, p.item) for p in TRAIN_PHOTOS}
    held_out = {(p.loader, p.item) for p in EVAL_PHOTOS}
    assert not train & held_out
    names = {p.name for p in TRAIN_PHOTOS + EVAL_PHOTOS}
    assert not names & set(EXCLUDED_PHOTOS)
    # The stereo pair shares one loader: only its held-out half may appear anywhere.
    assert {p.item for p in TRAIN_PHOTOS + EVAL_PHOTOS if p.loader == "stereo_motorcycle"} == {0}
    assert "cat" not in {p.loader for p in TRAIN_PHOTOS}


def test_photos_load_as_rgb_uint8() -> None:
    for photo in TRAIN_PHOTOS + EVAL_PHOTOS:
        image = load_photo(photo)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, photo.name


def test_eval_images_fit_every_generator() -> None:
    for name, image in eval_images().items():
        height, width = image.shape[:2]
        assert height % SIZE_MULTIPLE == 0 and width % SIZE_MULTIPLE == 0, name
        assert WORKING_SIDE - SIZE_MULTIPLE < max(height, width) <= WORKING_SIDE, name


def test_sampler_pairs_are_aligned_filter_outputs() -> None:
    target = get_target("pencil")
    sampler = PairSampler(target, Augmentation(crop=48), photos=TRAIN_PHOTOS[:2])
    image, rendered = sampler.pair(TRAIN_PHOTOS[0], 320, mirrored=True)
    np.testing.assert_array_equal(rendered, target(image))
    upright, _ = sampler.pair(TRAIN_PHOTOS[0], 320, mirrored=False)
    np.testing.assert_array_equal(image, upright[:, ::-1])
    assert max(upright.shape[:2]) == 320
    photos, targets = sampler.batch(3)
    assert photos.shape == targets.shape == (3, 48, 48, 3)


def test_sampler_is_seeded_and_restorable() -> None:
    target = get_target("cartoon")
    photos = TRAIN_PHOTOS[:2]
    a = PairSampler(target, Augmentation(crop=32, long_sides=(160, 192)), photos=photos, seed=7)
    b = PairSampler(target, Augmentation(crop=32, long_sides=(160, 192)), photos=photos, seed=7)
    first = a.batch(2)
    np.testing.assert_array_equal(first[0], b.batch(2)[0])
    state = a.rng_state()
    following = a.batch(2)
    b.set_rng_state(state)
    np.testing.assert_array_equal(following[1], b.batch(2)[1])


def test_small_photographs_are_enlarged_to_fit_the_crop() -> None:
    page = next(p for p in TRAIN_PHOTOS if p.name == "page")
    sampler = PairSampler(get_target("cartoon"), Augmentation(crop=256, long_sides=(320,)), photos=(page,))
    image, _ = sampler.pair(page, 320, mirrored=False)
    assert min(image.shape[:2]) >= 256
