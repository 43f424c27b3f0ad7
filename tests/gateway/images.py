"""Image bytes for the gateway tests: real photographs and deliberately awkward files."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(pixels: np.ndarray | Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    """Bytes of ``pixels`` in ``fmt``."""
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noisy_crop(photo: np.ndarray, height: int, width: int, seed: int) -> np.ndarray:
    """A distinct ``height``x``width`` image per seed (so no two requests share a cache entry)."""
    rng = np.random.default_rng(seed)
    top = int(rng.integers(0, photo.shape[0] - height + 1))
    left = int(rng.integers(0, photo.shape[1] - width + 1))
    crop = photo[top : top + height, left : left + width].astype(np.int16)
    return np.clip(crop + rng.integers(-8, 9, crop.shape), 0, 255).astype(np.uint8)


def png_with_declared_size(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width``x``height`` but carries almost no data (a bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def animated(fmt: str) -> bytes:
    """A two-frame animation (GIF or WebP)."""
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue")]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def cmyk_jpeg(photo: np.ndarray) -> bytes:
    return encode(Image.fromarray(photo).convert("CMYK"), "JPEG", quality=90)


def png16(photo: np.ndarray) -> bytes:
    grey = (photo.mean(axis=2) * 257).astype(np.uint16)
    return encode(Image.fromarray(grey), "PNG")


def exif_rotated_jpeg(photo: np.ndarray) -> bytes:
    """A JPEG stored landscape with EXIF orientation 6 (display rotated 90° clockwise)."""
    image = Image.fromarray(photo)
    exif = image.getexif()
    exif[0x0112] = 6
    return encode(image, "JPEG", quality=90, exif=exif.tobytes())


def palette_png_with_transparency(photo: np.ndarray) -> bytes:
    image = Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return encode(image, "PNG", transparency=0)
