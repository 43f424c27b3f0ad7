"""The calibration / evaluation photo split and image preparation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from export.photos import (
    CALIBRATION_PHOTOS,
    EVALUATION_PHOTOS,
    as_rgb,
    batch_of,
    calibration_photos,
    evaluation_photos,
    fit,
    folder_photos,
)


def test_calibration_and_evaluation_photos_are_disjoint() -> None:
    assert not set(CALIBRATION_PHOTOS) & set(EVALUATION_PHOTOS)
    assert len(EVALUATION_PHOTOS) >= 4


def test_bundled_photos_are_real_rgb_images() -> None:
    photos = evaluation_photos() + calibration_photos(3)
    for photo in photos:
        assert photo.pixels.dtype == np.uint8 and photo.pixels.ndim == 3 and photo.pixels.shape[2] == 3
        assert photo.pixels.std() > 10  # not a flat test card
    # The evaluation images are distinct photographs, not copies of one another.
    digests = {photo.pixels.tobytes()[:4096] for photo in photos}
    assert len(digests) == len(photos)


def test_fit_crops_to_aspect_and_resizes() -> None:
    wide = np.zeros((100, 300, 3), dtype=np.uint8)
    wide[:, 100:200] = 255  # the centre third is white
    out = fit(wide, 50, 50)
    assert out.shape == (50, 50, 3)
    assert out.min() > 200  # only the centre was kept


def test_batch_of_cycles_photos() -> None:
    batch = batch_of(evaluation_photos(2), 32, batch=5)
    assert batch.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(batch[0], batch[2])


def test_as_rgb_handles_gray_and_alpha() -> None:
    assert as_rgb(np.zeros((4, 5), dtype=np.uint8)).shape == (4, 5, 3)
    assert as_rgb(np.zeros((4, 5, 4), dtype=np.uint8)).shape == (4, 5, 3)
    with pytest.raises(ValueError):
        as_rgb(np.zeros((4, 5, 2), dtype=np.uint8))


def test_folder_photos_reads_images_and_skips_the_rest(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8, 3), 10, dtype=np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(np.full((8, 8), 20, dtype=np.uint8)).save(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    photos = folder_photos(tmp_path)
    assert [p.name for p in photos] == ["a.jpg", "b.png"]
    assert all(p.pixels.shape == (8, 8, 3) for p in photos)


def test_folder_photos_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a directory"):
        folder_photos(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no readable images"):
        folder_photos(tmp_path)
