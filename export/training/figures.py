"""Pictures of a training run: the before/after preview, held-out samples, and loss curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from export.training.targets import Image

GAP = 6


def _label(canvas: PILImage.Image, xy: tuple[int, int], text: str) -> None:
    draw = ImageDraw.Draw(canvas, "RGBA")
    font = ImageFont.load_default(size=18)
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    draw.rectangle((left - 6, top - 4, right + 6, bottom + 4), fill=(0, 0, 0, 150))
    draw.text(xy, text, font=font, fill=(255, 255, 255, 255))


def before_after(photo: Image, stylised: Image, title: str) -> PILImage.Image:
    """Photo and its stylisation side by side, labelled "photo" and ``title``."""
    if photo.shape != stylised.shape:
        raise ValueError(f"photo {photo.shape} and stylisation {stylised.shape} differ in shape")
    height, width = photo.shape[:2]
    canvas = PILImage.new("RGB", (2 * width + GAP, height), (255, 255, 255))
    canvas.paste(PILImage.fromarray(photo), (0, 0))
    canvas.paste(PILImage.fromarray(stylised), (width + GAP, 0))
    _label(canvas, (12, 10), "photo")
    _label(canvas, (width + GAP + 12, 10), title)
    return canvas


def save_preview(photo: Image, stylised: Image, title: str, path: Path) -> Path:
    """Write the before/after preview PNG used by the gallery and the README."""
    path.parent.mkdir(parents=True, exist_ok=True)
    before_after(photo, stylised, title).save(path)
    return path


def save_samples(rows: Mapping[str, tuple[Image, Image, Image]], path: Path, title: str) -> Path:
    """Grid of held-out photographs: photo | filter target | generator, one row per photograph."""
    columns = ("photo", "target (OpenCV filter)", "generator")
    fig, axes = plt.subplots(len(rows), 3, figsize=(12, 2.8 * len(rows)), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c, image in enumerate(images):
            axes[r, c].imshow(image)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(columns[c])
        axes[r, 0].set_ylabel(name)
    fig.suptitle(f"{title}: held-out photographs")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over ``window`` points (shorter at the start), same length as ``values``."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return data
    cumulative = np.cumsum(np.insert(data, 0, 0.0))
    ends = np.arange(1, data.size + 1)
    starts = np.maximum(0, ends - window)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def save_loss_curves(histories: Mapping[str, Mapping[str, Sequence[float]]], path: Path, window: int = 50) -> Path:
    """Loss curves of one or more runs (label → per-step history), smoothed over ``window`` steps."""
    panels = (
        ("g_l1", "generator L1 (to target)"),
        ("g_adv", "generator adversarial"),
        ("d_loss", "discriminator loss"),
        ("d_real", "D score: real − generated"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2))
    for label, history in histories.items():
        for ax, (key, title) in zip(axes, panels, strict=True):
            values = history[key]
            if key == "d_real":
                values = np.asarray(history["d_real"]) - np.asarray(history["d_fake"])
            ax.plot(moving_average(values, window), label=label, linewidth=1.2)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
    if len(histories) > 1:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
