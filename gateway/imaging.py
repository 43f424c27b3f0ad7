"""Image decoding, sizing and encoding: pure functions, no I/O, unit-testable.

Decoding is defensive: the format is allow-listed and the pixel count is checked from the
header before any pixel is decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
"""Pillow format name → media type of every format accepted as input."""

OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
"""Response ``format`` parameter → (Pillow format, media type)."""


class ImageRejected(ValueError):
    """The bytes are not an acceptable image; carries the HTTP status and error code to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DecodedImage:
    """An RGB image as a ``[H, W, 3]`` uint8 array with the format it arrived in."""

    pixels: np.ndarray
    format: str


def decode_image(data: bytes, max_pixels: int) -> DecodedImage:
    """Decode JPEG/PNG/WebP bytes to RGB, applying EXIF orientation.

    Only the allow-listed parsers are tried, and the pixel count is checked from the header
    before :meth:`PIL.Image.Image.load`, so a decompression bomb is refused without decoding it.
    """
    if not data:
        raise ImageRejected(422, "empty_image", "the image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except UnidentifiedImageError as error:
        raise ImageRejected(415, "unsupported_media_type", "not a JPEG, PNG or WebP image") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageRejected(413, "too_many_pixels", f"the image declares too many pixels: {error}") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageRejected(422, "corrupt_image", f"the image header could not be read: {error}") from error
    source_format = image.format or ""
    width, height = image.size
    if width * height > max_pixels:
        raise ImageRejected(413, "too_many_pixels", f"{width}x{height} exceeds the limit of {max_pixels} pixels")
    if getattr(image, "n_frames", 1) > 1:
        raise ImageRejected(422, "animated_image", "animated images are not supported; send a single frame")
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        rgb = _to_rgb(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageRejected(422, "corrupt_image", f"the image could not be decoded: {error}") from error
    return DecodedImage(np.asarray(rgb, dtype=np.uint8), source_format)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB from any mode; transparency is flattened onto white rather than dropped to black."""
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        # 16-bit greyscale: scale to 8 bits instead of clipping.
        wide = np.asarray(image, dtype=np.uint32)
        return Image.fromarray((wide >> 8).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def resize_to_max_side(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink (never enlarge) so the longer side is at most ``max_side``."""
    height, width = pixels.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))


def pad_to_shape(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad bottom/right by edge reflection (edge replication when the image is too small)."""
    pad_h, pad_w = height - pixels.shape[0], width - pixels.shape[1]
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f"cannot pad {pixels.shape[:2]} down to {(height, width)}")
    mode = "reflect" if pad_h < pixels.shape[0] and pad_w < pixels.shape[1] else "edge"
    return np.pad(pixels, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is ≥ ``value``."""
    return -(-value // multiple) * multiple


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an RGB array."""
    return encode_image(pixels, "png", 100)


def encode_image(pixels: np.ndarray, output_format: str, quality: int) -> bytes:
    """Encode an RGB array as ``png``, ``jpeg`` or ``webp``; ``quality`` applies to the lossy two."""
    pil_format, _ = OUTPUT_FORMATS[output_format]
    options: dict[str, object] = {"optimize": False, "compress_level": 3} if pil_format == "PNG" else {"quality": quality}
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format=pil_format, **options)
    return buffer.getvalue()


def bucket_side(side: int, buckets: tuple[int, ...], multiple: int) -> int:
    """The padded length for ``side``: the smallest bucket that fits, as a multiple of ``multiple``.

    Sides beyond the largest bucket are only rounded up to ``multiple``.
    """
    for bucket in buckets:
        if bucket >= side:
            return round_up(bucket, multiple)
    return round_up(side, multiple)


def bucket_shape(height: int, width: int, buckets: tuple[int, ...], multiple: int) -> tuple[int, int]:
    """``(H, W)`` the image is padded to, so differently sized images share a tensor shape."""
    return bucket_side(height, buckets, multiple), bucket_side(width, buckets, multiple)
