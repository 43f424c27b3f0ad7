"""Pure image handling: decoding rules, resizing, padding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gateway.imaging import ImageRejected, decode_image, pad_to_shape, resize_to_max_side, round_up


def encoded(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_rgba_png_is_flattened_to_rgb() -> None:
    image = Image.new("RGBA", (10, 6), (255, 0, 0, 0))
    decoded = decode_image(encoded(image, "PNG"), max_pixels=1000)
    assert decoded.pixels.shape == (6, 10, 3)
    assert decoded.format == "PNG"
    assert tuple(decoded.pixels[0, 0]) == (255, 255, 255)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    data = encoded(Image.new("RGB", (40, 20)), "JPEG", exif=exif.tobytes())
    assert decode_image(data, max_pixels=10_000).pixels.shape == (40, 20, 3)


def test_pixel_limit_is_checked_before_decoding() -> None:
    data = encoded(Image.new("L", (300, 300)), "PNG")
    with pytest.raises(ImageRejected) as info:
        decode_image(data, max_pixels=300 * 299)
    assert info.value.status == 413


@pytest.mark.parametrize(
    ("data", "status"),
    [(b"", 422), (b"hello world", 415), (encoded(Image.new("RGB", (4, 4)), "GIF"), 415)],
)
def test_bad_bytes_are_rejected_with_a_status(data: bytes, status: int) -> None:
    with pytest.raises(ImageRejected) as info:
        decode_image(data, max_pixels=1000)
    assert info.value.status == status


def test_truncated_jpeg_is_422() -> None:
    data = encoded(Image.new("RGB", (64, 64), (10, 200, 30)), "JPEG")
    with pytest.raises(ImageRejected) as info:
        decode_image(data[: len(data) // 2], max_pixels=10_000)
    assert info.value.status == 422


def test_resize_only_shrinks() -> None:
    pixels = np.zeros((100, 50, 3), np.uint8)
    assert resize_to_max_side(pixels, 200).shape == (100, 50, 3)
    assert resize_to_max_side(pixels, 40).shape == (40, 20, 3)


def test_pad_to_shape_keeps_the_original_in_the_corner() -> None:
    pixels = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    padded = pad_to_shape(pixels, round_up(5, 4), round_up(7, 4))
    assert padded.shape == (8, 8, 3)
    assert np.array_equal(padded[:5, :7], pixels)
