"""The benchmark image set: real photographs bundled with scikit-image, cropped and resized to buckets."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

PHOTO_NAMES: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
"""Colour photographs shipped in the scikit-image wheel (no download at run time)."""


@dataclass(frozen=True)
class Photo:
    """One benchmark image: pixels (uint8 HWC RGB) and the same image as a JPEG upload."""

    name: str
    pixels: np.ndarray
    jpeg: bytes


def square_resize(pixels: np.ndarray, side: int) -> np.ndarray:
    """Centre-crop to a square and resize to ``side`` x ``side`` (bicubic)."""
    height, width = pixels.shape[:2]
    crop = min(height, width)
    top, left = (height - crop) // 2, (width - crop) // 2
    square = Image.fromarray(pixels[top : top + crop, left : left + crop])
    return np.asarray(square.resize((side, side), Image.Resampling.BICUBIC), dtype=np.uint8)


def encode_jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB image."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@lru_cache(maxsize=None)
def load_photos(sides: tuple[int, ...]) -> tuple[Photo, ...]:
    """Every photo at every side, in a fixed order (so runs are comparable)."""
    from skimage import data

    photos = []
    for name in PHOTO_NAMES:
        original = getattr(data, name)()
        if original.ndim == 2:
            original = np.stack([original] * 3, axis=-1)
        for side in sides:
            pixels = square_resize(original[..., :3], side)
            photos.append(Photo(f"{name}@{side}", pixels, encode_jpeg(pixels)))
    return tuple(photos)


def perturb(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flip the lowest bit of one random pixel: a new image (new cache key), visually identical."""
    changed = pixels.copy()
    y, x, c = (int(rng.integers(n)) for n in pixels.shape)
    changed[y, x, c] ^= 1
    return changed
