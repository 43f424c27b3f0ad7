"""The looks the bundled styles learn: classical OpenCV stylisation filters, computed from photos.

Each filter maps a uint8 RGB ``H×W×3`` image to a uint8 RGB image of the same size and is
deterministic, so a photo always has the same target and held-out quality is measurable.
Filter parameters are in pixels, so the looks are defined at the working resolution the
training and evaluation use (long side around 512 px).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

Image = np.ndarray


@dataclass(frozen=True)
class TargetFilter:
    """A named stylisation filter; ``render`` is the pure image → image function."""

    name: str
    title: str
    description: str
    render: Callable[[Image], Image]

    def __call__(self, image: Image) -> Image:
        check_rgb(image)
        return self.render(image)


def check_rgb(image: Image) -> None:
    """Raise ``ValueError`` unless ``image`` is a uint8 ``H×W×3`` array."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 H×W×3 RGB image, got {image.dtype} {image.shape}")


def _bgr(image: Image) -> Image:
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


def _rgb(image: Image) -> Image:
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def watercolor(image: Image) -> Image:
    """OpenCV's non-photorealistic ``stylization``: flattened washes with darkened contours."""
    return _rgb(cv2.stylization(_bgr(image), sigma_s=60, sigma_r=0.45))


def pencil_sketch(image: Image) -> Image:
    """The grey output of OpenCV's ``pencilSketch``: graphite strokes on white, as RGB.

    It depends on luminance ratios more than on absolute colour, which suits generators whose
    first InstanceNorm discards an image's global colour and brightness (TransformerNet).
    """
    grey, _ = cv2.pencilSketch(_bgr(image), sigma_s=60, sigma_r=0.07, shade_factor=0.05)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


def colour_pencil(image: Image) -> Image:
    """The colour output of OpenCV's ``pencilSketch``: hatched strokes on a white ground."""
    _, colour = cv2.pencilSketch(_bgr(image), sigma_s=60, sigma_r=0.07, shade_factor=0.05)
    return _rgb(colour)


def cartoon(image: Image) -> Image:
    """Edge-preserving smoothing (recursive domain transform) inked with adaptive-threshold lines.

    The line mask comes from a median-filtered luminance so that fine texture does not ink.
    """
    bgr = _bgr(image)
    flat = cv2.edgePreservingFilter(bgr, flags=cv2.RECURS_FILTER, sigma_s=60, sigma_r=0.4)
    luminance = cv2.medianBlur(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 5)
    ink = cv2.adaptiveThreshold(luminance, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 5)
    return _rgb(cv2.bitwise_and(flat, flat, mask=ink))


TARGETS: dict[str, TargetFilter] = {
    f.name: f
    for f in (
        TargetFilter(
            name="watercolor",
            title="Watercolor",
            description="Flat watercolour washes with dark contours (OpenCV stylization).",
            render=watercolor,
        ),
        TargetFilter(
            name="pencil",
            title="Pencil sketch",
            description="Graphite hatching on white paper (OpenCV pencilSketch, grey output).",
            render=pencil_sketch,
        ),
        TargetFilter(
            name="colour_pencil",
            title="Colour pencil",
            description="Coloured pencil hatching on white paper (OpenCV pencilSketch, colour output).",
            render=colour_pencil,
        ),
        TargetFilter(
            name="cartoon",
            title="Cartoon",
            description="Smoothed colour regions inked with bold outlines (edge-preserving filter + adaptive threshold).",
            render=cartoon,
        ),
    )
}


def get_target(name: str) -> TargetFilter:
    """The target filter called ``name``; ``KeyError`` lists the known ones."""
    try:
        return TARGETS[name]
    except KeyError:
        raise KeyError(f"unknown target filter {name!r}; known: {', '.join(sorted(TARGETS))}") from None
