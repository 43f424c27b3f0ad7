"""What a finished run leaves behind: held-out metrics, samples, preview and loss curves."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import cv2
import torch

from export.training import figures
from export.training.data import eval_images
from export.training.evaluation import (
    Evaluation,
    evaluate,
    score_outputs,
    torch_stylizer,
)
from export.training.generators import parameter_count
from export.training.targets import get_target
from export.training.trainer import LOSS_KEYS, Trainer

PREVIEW_PHOTO = "chelsea"
"""Held-out photograph shown in every style's before/after preview."""

METRICS_FILE = "metrics.json"
PREVIEW_FILE = "preview.png"
SAMPLES_FILE = "samples.png"
LOSSES_FILE = "losses.png"
FINAL_WINDOW = 100
"""Final losses are means over this many last steps."""


def machine() -> dict[str, Any]:
    """The machine class a run's wall time was measured on."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "python": platform.python_version(),
    }


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def final_losses(trainer: Trainer) -> dict[str, float]:
    """Mean of each loss over the last :data:`FINAL_WINDOW` steps."""
    return {key: trainer.history.mean_over(key, FINAL_WINDOW) for key in LOSS_KEYS}


def evaluate_trainer(trainer: Trainer) -> Evaluation:
    """Held-out evaluation of the trainer's current generator through the served uint8 path."""
    spec = trainer.config.generator
    return evaluate(torch_stylizer(trainer.generator, spec.family_spec.value_range), get_target(trainer.config.target))


def write_report(trainer: Trainer, out_dir: Path, title: str, checkpoint: Path) -> dict[str, Any]:
    """Evaluate on held-out photographs and write metrics, preview, samples and loss curves to ``out_dir``."""
    config = trainer.config
    target = get_target(config.target)
    stylize = torch_stylizer(trainer.generator, config.generator.family_spec.value_range)
    images = eval_images()
    outputs = {name: stylize(photo) for name, photo in images.items()}
    evaluation = score_outputs(target, images, outputs)
    figures.save_preview(images[PREVIEW_PHOTO], outputs[PREVIEW_PHOTO], title, out_dir / PREVIEW_FILE)
    figures.save_samples(
        {name: (photo, target(photo), outputs[name]) for name, photo in images.items()}, out_dir / SAMPLES_FILE, title
    )
    figures.save_loss_curves({config.style: trainer.history.values}, out_dir / LOSSES_FILE)
    metrics = {
        "style": config.style,
        "config": config.to_dict(),
        "steps": trainer.step_count,
        "wall_time_s": trainer.elapsed_s,
        "machine": machine(),
        "final_losses": final_losses(trainer),
        "evaluation": evaluation.to_dict(),
        "generator": {
            "family": config.generator.family,
            "parameters": parameter_count(trainer.generator),
            "checkpoint": checkpoint.name,
            "checkpoint_bytes": checkpoint.stat().st_size,
            "sha256": sha256(checkpoint),
        },
    }
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
