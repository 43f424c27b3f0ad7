"""Real photographs for calibration and evaluation, and the one place their split is defined.

The default images are the photographs bundled in scikit-image's wheel (nothing is downloaded).
:data:`EVALUATION_PHOTOS` are held out: quality gates, parity checks and training-time
evaluation use them. :data:`CALIBRATION_PHOTOS` are the disjoint rest, used to calibrate INT8
activation ranges. Keeping the two apart is what makes an INT8 gate an honest measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Photo:
    """An RGB photograph: ``pixels`` is uint8 ``[H, W, 3]``."""

    name: str
    pixels: np.ndarray


def _bundled(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        if name in ("motorcycle_left", "motorcycle_right"):
            left, right, _ = data.stereo_motorcycle()
            return left if name == "motorcycle_left" else right
        return getattr(data, name)()

    return load


EVALUATION_PHOTOS: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket")
"""Held-out photographs: people, an animal, an object, a landscape with sky."""

CALIBRATION_PHOTOS: tuple[str, ...] = (
    "motorcycle_left",
    "motorcycle_right",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
)
"""Disjoint from :data:`EVALUATION_PHOTOS`. Colour photographs only: the bundled grayscale scans and
textures (camera, coins, grass, …) drive activations beyond what served photos produce, and
calibrating on them cost INT8 1.5-3 dB PSNR on the ResNet and AnimeGAN generators measured."""


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W, 3]`` from grayscale, RGB or RGBA arrays (alpha is dropped)."""
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ValueError(f"not an image array: shape {pixels.shape}")
    return np.ascontiguousarray(pixels[:, :, :3].astype(np.uint8))


def bundled_photo(name: str) -> Photo:
    """One of scikit-image's bundled photographs by name (e.g. ``"astronaut"``)."""
    if name not in EVALUATION_PHOTOS + CALIBRATION_PHOTOS:
        raise KeyError(f"unknown bundled photo {name!r}")
    return Photo(name, as_rgb(_bundled(name)()))


def evaluation_photos(limit: int | None = None) -> list[Photo]:
    """The held-out evaluation photographs (the first ``limit`` of them when given)."""
    return [bundled_photo(name) for name in EVALUATION_PHOTOS[:limit]]


def calibration_photos(limit: int | None = None) -> list[Photo]:
    """The default INT8 calibration photographs (the first ``limit`` of them when given)."""
    return [bundled_photo(name) for name in CALIBRATION_PHOTOS[:limit]]


def folder_photos(folder: Path, limit: int | None = None) -> list[Photo]:
    """Every readable image in ``folder`` (sorted by name), as RGB; raises if there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory")
    photos: list[Photo] = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            with Image.open(path) as image:
                photos.append(Photo(path.name, np.asarray(image.convert("RGB"))))
        except (UnidentifiedImageError, OSError):
            continue
        if limit is not None and len(photos) >= limit:
            break
    if not photos:
        raise FileNotFoundError(f"{folder}: no readable images ({', '.join(IMAGE_SUFFIXES)})")
    return photos


def fit(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop to the target aspect ratio, then resize (Lanczos) to ``height`` x ``width``."""
    h, w = pixels.shape[:2]
    scale = min(h / height, w / width)
    crop_h, crop_w = round(height * scale), round(width * scale)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    cropped = Image.fromarray(pixels[top : top + crop_h, left : left + crop_w])
    return np.asarray(cropped.resize((width, height), Image.Resampling.LANCZOS))


def batch_of(photos: Sequence[Photo], side: int, batch: int | None = None) -> np.ndarray:
    """uint8 ``[N, side, side, 3]`` of the photos fitted to a square, cycling them to fill ``batch``."""
    count = len(photos) if batch is None else batch
    return np.stack([fit(photos[i % len(photos)].pixels, side, side) for i in range(count)])
