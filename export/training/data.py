"""Photographs for training and evaluation, and the augmented (photo, target) crops the GAN sees.

All photographs come from scikit-image's bundled data (nothing is downloaded). The held-out
evaluation set is the project's one :data:`export.photos.EVALUATION_PHOTOS`, never trained on;
training uses the export stage's colour calibration photographs plus grey textures and scans that
nobody holds out. Calibration photographs may be trained on: INT8 calibration measures activation
ranges, not quality.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import skimage.data

from export.photos import CALIBRATION_PHOTOS, EVALUATION_PHOTOS, as_rgb, bundled_photo
from export.training.targets import Image, TargetFilter

WORKING_SIDE = 512
"""Long side, in pixels, at which evaluation runs and the targets' pixel parameters are meant."""

SIZE_MULTIPLE = 4
"""Every zoo generator returns the input's size when H and W are multiples of this."""


@dataclass(frozen=True)
class Photo:
    """A bundled photograph by name, with its relative sampling weight in training."""

    name: str
    weight: float = 1.0


GREY_TEXTURES: tuple[str, ...] = ("camera", "coins", "clock", "brick", "grass", "gravel", "moon", "page")
"""Grey ``skimage.data`` scans and textures: edges and fine texture for the filters to act on."""

TRAIN_PHOTOS: tuple[Photo, ...] = tuple(Photo(name, weight=2.0) for name in CALIBRATION_PHOTOS) + tuple(
    Photo(name) for name in GREY_TEXTURES
)
"""Colour photographs are drawn twice as often as grey ones."""

EVAL_PHOTOS: tuple[Photo, ...] = tuple(Photo(name) for name in EVALUATION_PHOTOS)

EXCLUDED_PHOTOS: dict[str, str] = {"cat": "the same picture as the held-out chelsea"}


@functools.lru_cache(maxsize=32)
def _decoded(name: str) -> Image:
    if name in EVALUATION_PHOTOS + CALIBRATION_PHOTOS:
        image = bundled_photo(name).pixels
    else:
        image = as_rgb(getattr(skimage.data, name)())
    image.flags.writeable = False
    return image


def load_photo(photo: Photo) -> Image:
    """The photograph as uint8 RGB ``H×W×3`` (grey photographs are replicated to three channels).

    Decoded once per process; callers get their own copy.
    """
    return _decoded(photo.name).copy()


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


FILTER_MARGIN = 32
"""Context, in pixels, rendered around a training crop. The targets' domain-transform filters are
recursive, so a crop's target depends on its surroundings: with 32 px of real context the crop
matches the same crop of a whole-photograph render to 59 dB PSNR or better (measured on all
targets), far below anything the generators resolve."""

CHANNEL_ORDERS: tuple[tuple[int, int, int], ...] = tuple(itertools.permutations(range(3)))  # type: ignore[assignment]


@dataclass(frozen=True)
class Augmentation:
    """How training crops are drawn from the photographs."""

    crop: int = 128
    min_side: int = 320
    max_side: int = 640
    """Scale jitter: the photograph's long side is drawn uniformly from [min_side, max_side]."""
    hflip: bool = True
    permute_channels: bool = True
    """Colour augmentation: shuffle R, G, B. The target is rendered from the shuffled photo, so the
    pair stays exact while the few colour photographs cover every hue arrangement."""


@dataclass
class PairSampler:
    """Draws batches of aligned (photo, target) crops with its own seeded random generator.

    Each crop is augmented first (rescale, mirror, channel order) and the filter then runs on the
    augmented crop plus :data:`FILTER_MARGIN` of real surrounding context (clipped at the photo's
    borders, where the whole-photo render sees the border too), so the target is the filter's
    output for the augmented photograph rather than a filtered crop with false borders.
    """

    target: TargetFilter
    augmentation: Augmentation = field(default_factory=Augmentation)
    photos: tuple[Photo, ...] = TRAIN_PHOTOS
    seed: int = 0
    rng: np.random.Generator = field(init=False)
    _bases: dict[str, Image] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.photos:
            raise ValueError("PairSampler needs at least one photograph")
        aug = self.augmentation
        if not aug.crop <= aug.min_side <= aug.max_side:
            raise ValueError(f"need crop <= min_side <= max_side, got {aug.crop}, {aug.min_side}, {aug.max_side}")
        self.rng = np.random.default_rng(self.seed)
        weights = np.array([p.weight for p in self.photos], dtype=np.float64)
        self._probabilities = weights / weights.sum()

    def rescaled(self, photo: Photo, long_side: int) -> Image:
        """The photograph at ``long_side``, enlarged if needed so a crop fits its short side."""
        if photo.name not in self._bases:
            self._bases[photo.name] = fit_long_side(load_photo(photo), self.augmentation.max_side)
        image = fit_long_side(self._bases[photo.name], long_side)
        short = min(image.shape[:2])
        if short < self.augmentation.crop:
            image = fit_long_side(image, int(np.ceil(long_side * self.augmentation.crop / short)))
        return image

    def render_crop(
        self, image: Image, top: int, left: int, mirrored: bool, channels: tuple[int, ...]
    ) -> tuple[Image, Image]:
        """Crop ``image`` at (top, left), mirrored and channel-shuffled, and the filter's target for it."""
        crop, margin = self.augmentation.crop, FILTER_MARGIN
        height, width = image.shape[:2]
        y0, x0 = max(0, top - margin), max(0, left - margin)
        y1, x1 = min(height, top + crop + margin), min(width, left + crop + margin)
        region = image[y0:y1, x0:x1, list(channels)]
        top, left = top - y0, left - x0
        if mirrored:
            region = region[:, ::-1]
            left = region.shape[1] - left - crop
        region = np.ascontiguousarray(region)
        rendered = self.target(region)
        window = (slice(top, top + crop), slice(left, left + crop))
        return region[window], rendered[window]

    def batch(self, size: int) -> tuple[Image, Image]:
        """``size`` random crops: uint8 arrays ``[size, crop, crop, 3]`` of photos and targets."""
        aug = self.augmentation
        photos = np.empty((size, aug.crop, aug.crop, 3), dtype=np.uint8)
        targets = np.empty_like(photos)
        for i in range(size):
            photo = self.photos[int(self.rng.choice(len(self.photos), p=self._probabilities))]
            image = self.rescaled(photo, int(self.rng.integers(aug.min_side, aug.max_side + 1)))
            mirrored = bool(aug.hflip and self.rng.random() < 0.5)
            channels = (
                CHANNEL_ORDERS[int(self.rng.integers(len(CHANNEL_ORDERS)))] if aug.permute_channels else (0, 1, 2)
            )
            top = int(self.rng.integers(0, image.shape[0] - aug.crop + 1))
            left = int(self.rng.integers(0, image.shape[1] - aug.crop + 1))
            photos[i], targets[i] = self.render_crop(image, top, left, mirrored, channels)
        return photos, targets

    def rng_state(self) -> dict[str, Any]:
        """The sampler's random state, for a training checkpoint."""
        return self.rng.bit_generator.state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`rng_state` so a resumed run draws the same crops as an uninterrupted one."""
        self.rng.bit_generator.state = state
