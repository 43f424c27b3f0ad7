"""Full-resolution processing by overlapping tiles with feathered seams: pure array logic, no I/O.

An image larger than a model's maximum side is cut into equally sized tiles that overlap by
``overlap`` pixels; every tile is stylized on its own and the results are blended back with a
raised-cosine ramp across each overlap, so a seam is a smooth cross-fade instead of a hard edge.
Equal tile sizes let all tiles of an image travel to Triton in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """A window ``[top:top+height, left:left+width]`` of the full image."""

    top: int
    left: int
    height: int
    width: int


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets along one axis: stride ``tile - overlap``, the last tile flush with the end."""
    if tile <= 0:
        raise ValueError("tile size must be positive")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap {overlap} must be in [0, tile size {tile})")
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Tiles covering a ``height`` x ``width`` image; all have the same shape."""
    tile_h, tile_w = min(tile, height), min(tile, width)
    return [
        Tile(top, left, tile_h, tile_w)
        for top in axis_starts(height, tile, overlap)
        for left in axis_starts(width, tile, overlap)
    ]


def ramp(size: int, start: int, length: int, overlap: int) -> np.ndarray:
    """1-D blend weights of a tile: cosine ramps over the overlap on sides that have a neighbour.

    Weights stay strictly positive, so every pixel has a defined normalised blend.
    """
    weights = np.ones(size, dtype=np.float32)
    fade = min(overlap, size // 2)
    if fade == 0:
        return weights
    rising = (0.5 - 0.5 * np.cos(np.pi * (np.arange(fade, dtype=np.float32) + 0.5) / fade)).astype(np.float32)
    if start > 0:
        weights[:fade] = rising
    if start + size < length:
        weights[size - fade:] = rising[::-1]
    return weights


def crop(pixels: np.ndarray, tile: Tile) -> np.ndarray:
    """The tile's pixels of an ``[H, W, C]`` image."""
    return pixels[tile.top:tile.top + tile.height, tile.left:tile.left + tile.width]


def blend(tiles: list[Tile], outputs: list[np.ndarray], height: int, width: int, overlap: int) -> np.ndarray:
    """Weighted average of stylized tiles into one uint8 ``[height, width, 3]`` image."""
    if len(tiles) != len(outputs):
        raise ValueError(f"{len(tiles)} tiles but {len(outputs)} outputs")
    total = np.zeros((height, width, 3), dtype=np.float32)
    weight_sum = np.zeros((height, width, 1), dtype=np.float32)
    for tile, output in zip(tiles, outputs, strict=True):
        if output.shape[:2] != (tile.height, tile.width):
            raise ValueError(f"output {output.shape[:2]} does not match tile {(tile.height, tile.width)}")
        weights = np.outer(ramp(tile.height, tile.top, height, overlap), ramp(tile.width, tile.left, width, overlap))
        window = (slice(tile.top, tile.top + tile.height), slice(tile.left, tile.left + tile.width))
        total[window] += output.astype(np.float32) * weights[..., None]
        weight_sum[window] += weights[..., None]
    return np.clip(np.rint(total / weight_sum), 0, 255).astype(np.uint8)


def psnr(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (inf when identical)."""
    error = np.mean((reference.astype(np.float64) - candidate.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))
