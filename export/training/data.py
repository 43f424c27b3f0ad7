"""Photographs for training and evaluation, and the augmented (photo, target) crops the GAN sees.

All photographs come from scikit-image's bundled data (``skimage.data`` loaders; nothing is
downloaded). The split is fixed here: evaluation photographs are never trained on, and a
photograph that shares its scene with a held-out one (the stereo twin of the held-out motorcycle)
is used by neither side.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import skimage.data

from export.training.targets import Image, TargetFilter

WORKING_SIDE = 512
"""Long side, in pixels, at which evaluation runs and the targets' pixel parameters are meant."""

SIZE_MULTIPLE = 4
"""Every zoo generator returns the input's size when H and W are multiples of this."""


@dataclass(frozen=True)
class Photo:
    """A bundled photograph: the ``skimage.data`` loader and, for loaders returning tuples, which item."""

    name: str
    loader: str
    item: int | None = None
    weight: float = 1.0
    """Relative sampling weight in training (colour photographs count double)."""


TRAIN_PHOTOS: tuple[Photo, ...] = (
    Photo("astronaut", "astronaut", weight=2.0),
    Photo("rocket", "rocket", weight=2.0),
    Photo("hubble_deep_field", "hubble_deep_field", weight=2.0),
    Photo("retina", "retina", weight=2.0),
    Photo("immunohistochemistry", "immunohistochemistry", weight=2.0),
    Photo("camera", "camera"),
    Photo("coins", "coins"),
    Photo("clock", "clock"),
    Photo("brick", "brick"),
    Photo("grass", "grass"),
    Photo("gravel", "gravel"),
    Photo("moon", "moon"),
    Photo("page", "page"),
)

EVAL_PHOTOS: tuple[Photo, ...] = (
    Photo("chelsea", "chelsea"),
    Photo("coffee", "coffee"),
    Photo("motorcycle_left", "stereo_motorcycle", item=0),
)

EXCLUDED_PHOTOS: dict[str, str] = {
    "motorcycle_right": "stereo twin of the held-out motorcycle_left (same scene)",
    "cat": "the same picture as the held-out chelsea",
}


@functools.lru_cache(maxsize=32)
def _decoded(photo: Photo) -> Image:
    data = getattr(skimage.data, photo.loader)()
    image = np.asarray(data[photo.item] if photo.item is not None else data)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = np.ascontiguousarray(image[:, :, :3]).astype(np.uint8)
    image.flags.writeable = False
    return image


def load_photo(photo: Photo) -> Image:
    """The photograph as uint8 RGB ``H×W×3`` (grey photographs are replicated to three channels).

    Decoded once per process; callers get their own copy.
    """
    return _decoded(photo).copy()


def fit_long_side(image: Image, side: int) -> Image:
    """Resize so the long side is ``side`` pixels (area filter down, bicubic up)."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interpolation)


def crop_to_multiple(image: Image, multiple: int = SIZE_MULTIPLE) -> Image:
    """Centre-crop H and W down to multiples of ``multiple``."""
    height, width = image.shape[:2]
    top, left = (height % multiple) // 2, (width % multiple) // 2
    return image[top : top + height - height % multiple, left : left + width - width % multiple]


def eval_images(side: int = WORKING_SIDE) -> dict[str, Image]:
    """The held-out photographs at the working resolution, sized for every zoo generator."""
    return {p.name: crop_to_multiple(fit_long_side(load_photo(p), side)) for p in EVAL_PHOTOS}


@dataclass(frozen=True)
class Augmentation:
    """How training crops are drawn: square crops from photographs rescaled and mirrored."""

    crop: int = 128
    long_sides: tuple[int, ...] = (320, 384, 448, 512, 640)
    """Scale jitter: the photograph's long side before filtering and cropping."""
    hflip: bool = True


@dataclass
class PairSampler:
    """Draws batches of aligned (photo, target) crops with its own seeded random generator.

    The filter runs on the whole rescaled (and mirrored) photograph before cropping, so a
    crop's target is exactly the filter's output there, never a filtered crop with false borders.
    Rendered pairs are cached because the set of (photo, scale, mirror) variants is small.
    """

    target: TargetFilter
    augmentation: Augmentation = field(default_factory=Augmentation)
    photos: tuple[Photo, ...] = TRAIN_PHOTOS
    seed: int = 0
    rng: np.random.Generator = field(init=False)
    _sources: dict[str, Image] = field(init=False, default_factory=dict)
    _pairs: dict[tuple[str, int, bool], tuple[Image, Image]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.photos:
            raise ValueError("PairSampler needs at least one photograph")
        self.rng = np.random.default_rng(self.seed)
        weights = np.array([p.weight for p in self.photos], dtype=np.float64)
        self._probabilities = weights / weights.sum()

    def pair(self, photo: Photo, long_side: int, mirrored: bool) -> tuple[Image, Image]:
        """The rescaled (and mirrored) photograph and its filter target, rendered once."""
        key = (photo.name, long_side, mirrored)
        if key not in self._pairs:
            if photo.name not in self._sources:
                self._sources[photo.name] = load_photo(photo)
            image = fit_long_side(self._sources[photo.name], long_side)
            image = self._ensure_min_side(image)
            if mirrored:
                image = np.ascontiguousarray(image[:, ::-1])
            self._pairs[key] = (image, self.target(image))
        return self._pairs[key]

    def _ensure_min_side(self, image: Image) -> Image:
        crop = self.augmentation.crop
        short = min(image.shape[:2])
        if short >= crop:
            return image
        return fit_long_side(image, int(np.ceil(max(image.shape[:2]) * crop / short)))

    def batch(self, size: int) -> tuple[Image, Image]:
        """``size`` random crops: uint8 arrays ``[size, crop, crop, 3]`` of photos and targets."""
        crop = self.augmentation.crop
        photos = np.empty((size, crop, crop, 3), dtype=np.uint8)
        targets = np.empty_like(photos)
        for i in range(size):
            photo = self.photos[int(self.rng.choice(len(self.photos), p=self._probabilities))]
            long_side = int(self.rng.choice(self.augmentation.long_sides))
            mirrored = bool(self.augmentation.hflip and self.rng.random() < 0.5)
            image, target = self.pair(photo, long_side, mirrored)
            top = int(self.rng.integers(0, image.shape[0] - crop + 1))
            left = int(self.rng.integers(0, image.shape[1] - crop + 1))
            photos[i] = image[top : top + crop, left : left + crop]
            targets[i] = target[top : top + crop, left : left + crop]
        return photos, targets

    def rng_state(self) -> dict[str, Any]:
        """The sampler's random state, for a training checkpoint."""
        return self.rng.bit_generator.state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`rng_state` so a resumed run draws the same crops as an uninterrupted one."""
        self.rng.bit_generator.state = state
