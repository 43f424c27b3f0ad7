"""Stabiliser ablation: the same recipe trained with each stabiliser, measured side by side."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from export.training import figures
from export.training.model_card import ABLATION_JSON, ABLATION_MD, STABILISER_TEXT, ablation_table
from export.training.report import evaluate_trainer, machine
from export.training.trainer import STABILISERS, STATE_FILE, LossHistory, Trainer, open_trainer, run_training

if TYPE_CHECKING:
    from export.styles import BundledStyle

ABLATION_PLOT = "ablation.png"


def stability(history: LossHistory, window: int) -> dict[str, float]:
    """Summary of the adversarial game over the last ``window`` steps.

    A discriminator that wins outright shows a loss near 0 and a large real−generated score gap;
    an oscillating game shows a large spread of the generator's adversarial loss.
    """
    values = {k: np.asarray(v[-window:], dtype=np.float64) for k, v in history.values.items()}
    return {
        "d_loss": float(values["d_loss"].mean()),
        "score_gap": float((values["d_real"] - values["d_fake"]).mean()),
        "g_adv_std": float(values["g_adv"].std()),
        "g_l1": float(values["g_l1"].mean()),
    }


def run_ablation(
    style: BundledStyle,
    steps: int,
    out_dir: Path,
    variants: tuple[str, ...] = STABILISERS,
    on_step: Callable[[Trainer, dict[str, float]], None] | None = None,
    on_variant: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[dict[str, Any] | None, dict[str, dict[str, list[float]]]]:
    """Train ``style``'s recipe for ``steps`` steps once per stabiliser (resuming unfinished variants).

    Returns the JSON-able results (``None`` if stopped early) and each variant's loss history.
    """
    results: dict[str, Any] = {}
    histories: dict[str, dict[str, list[float]]] = {}
    for variant in variants:
        if on_variant is not None:
            on_variant(variant)
        config = replace(style.recipe, steps=steps, stabiliser=variant)
        run_dir = out_dir / variant
        trainer = open_trainer(config, run_dir, resume=(run_dir / STATE_FILE).exists())
        run_training(trainer, run_dir, on_step=on_step, should_stop=should_stop)
        if trainer.step_count < steps:
            return None, histories
        evaluation = evaluate_trainer(trainer)
        results[variant] = {
            "stabiliser": variant,
            "wall_time_s": trainer.elapsed_s,
            "evaluation": evaluation.to_dict(),
            "stability": stability(trainer.history, window=max(1, steps // 4)),
        }
        histories[variant] = trainer.history.values
    ablation = {"style": style.name, "steps": steps, "machine": machine(), "variants": results}
    return ablation, histories


def render_ablation(ablation: dict[str, Any]) -> str:
    """ABLATION.md: what was varied, the measured table, the curves."""
    lines = [
        "# Stabiliser ablation",
        "",
        f"The `{ablation['style']}` recipe trained for {ablation['steps']} steps once per discriminator "
        "stabiliser, with the same seed, data order and every other setting equal. Held-out metrics are "
        "against the filter target on the evaluation photographs; the game statistics are over the last "
        "quarter of the steps. Produced by `pastiche ablate`.",
        "",
        *(f"- **{name}**: {text}" for name, text in STABILISER_TEXT.items() if name in ablation["variants"]),
        "",
        *ablation_table(ablation),
        "",
        f"![loss curves per stabiliser]({ABLATION_PLOT})",
        "",
    ]
    return "\n".join(lines)


def write_ablation(ablation: dict[str, Any], histories: dict[str, dict[str, list[float]]], directory: Path) -> list[Path]:
    """Write ablation.json, ABLATION.md and the comparison plot into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / ABLATION_JSON
    json_path.write_text(json.dumps(ablation, indent=2) + "\n")
    md_path = directory / ABLATION_MD
    md_path.write_text(render_ablation(ablation))
    plot = figures.save_loss_curves(histories, directory / ABLATION_PLOT)
    return [json_path, md_path, plot]
