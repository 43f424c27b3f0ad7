"""Ablations: one recipe trained once per value of a single setting, measured side by side.

Used to justify the recipe's choices with numbers: the discriminator stabiliser (spectral norm,
R1 or none), the generator's normalisation, the adversarial loss, learning rates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from export.training import figures
from export.training.generators import GeneratorSpec
from export.training.report import evaluate_trainer, machine
from export.training.trainer import (
    STATE_FILE,
    LossHistory,
    TrainConfig,
    Trainer,
    open_trainer,
    run_training,
    with_overrides,
)

if TYPE_CHECKING:
    from export.styles import BundledStyle

VARIABLE_FIELDS: tuple[str, ...] = (
    "stabiliser",
    "adversarial",
    "norm",
    "permute_channels",
    "freeze_norm_from",
    "lr_g",
    "lr_d",
    "l1_weight",
    "r1_gamma",
    "width",
)
BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _convert(kind: type, item: str) -> Any:
    if kind is bool:
        if item.lower() not in BOOLEANS:
            raise ValueError(item)
        return BOOLEANS[item.lower()]
    return kind(item)


def parse_values(field: str, raw: str, config: TrainConfig) -> tuple[Any, ...]:
    """Comma-separated ``raw`` values for ``field``, converted to the field's type in ``config``."""
    if field not in VARIABLE_FIELDS:
        raise ValueError(f"cannot vary {field!r}; choose one of {', '.join(VARIABLE_FIELDS)}")
    generator_fields = {f.name for f in fields(GeneratorSpec)}
    current = getattr(config.generator if field in generator_fields else config, field)
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if len(items) < 2:
        raise ValueError(f"an ablation needs at least two values of {field}, got {raw!r}")
    try:
        values = tuple(_convert(type(current), item) for item in items)
    except ValueError:
        raise ValueError(f"{field} takes {type(current).__name__} values, got {raw!r}") from None
    for value in values:
        with_overrides(config, **{field: value})  # validates, e.g. unknown stabiliser names
    return values


def config_digest(config: TrainConfig) -> str:
    """Short stable hash of a training config (names a run directory)."""
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


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
    field: str,
    values: tuple[Any, ...],
    steps: int,
    out_dir: Path,
    on_step: Callable[[Trainer, dict[str, float]], None] | None = None,
    on_variant: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[dict[str, Any] | None, dict[str, dict[str, list[float]]]]:
    """Train ``style``'s recipe for ``steps`` steps once per value of ``field`` (resuming unfinished ones).

    Returns the JSON-able results (``None`` if stopped early) and each variant's loss history.
    """
    results: dict[str, Any] = {}
    histories: dict[str, dict[str, list[float]]] = {}
    for value in values:
        label = str(value)
        if on_variant is not None:
            on_variant(label)
        config = with_overrides(style.recipe, steps=steps, **{field: value})
        # Runs are keyed by their whole config, so the recipe's own variant is trained once and
        # shared by every ablation of that style and length.
        run_dir = out_dir / config_digest(config)
        trainer = open_trainer(config, run_dir, resume=(run_dir / STATE_FILE).exists())
        run_training(trainer, run_dir, on_step=on_step, should_stop=should_stop)
        if trainer.step_count < steps:
            return None, histories
        evaluation = evaluate_trainer(trainer)
        results[label] = {
            "value": value,
            "wall_time_s": trainer.elapsed_s,
            "evaluation": evaluation.to_dict(),
            "stability": stability(trainer.history, window=max(1, steps // 4)),
        }
        histories[label] = trainer.history.values
    ablation = {
        "style": style.name,
        "field": field,
        "recipe_value": str(getattr(style.recipe.generator, field, getattr(style.recipe, field, None))),
        "steps": steps,
        "machine": machine(),
        "variants": results,
    }
    return ablation, histories


def ablation_table(ablation: dict[str, Any]) -> list[str]:
    """Markdown table of an ablation's variants (the recipe's own value in bold)."""
    field = ablation["field"]
    lines = [
        f"| {field} | held-out PSNR | SSIM | gain vs identity | final D loss | D real−fake gap "
        "| std of G adversarial loss | wall time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, v in ablation["variants"].items():
        e, s = v["evaluation"], v["stability"]
        name = f"**{label}** (recipe)" if label == ablation["recipe_value"] else label
        lines.append(
            f"| {name} | {e['psnr']:.2f} dB | {e['ssim']:.3f} | {e['psnr_margin']:+.2f} dB | {s['d_loss']:.3f} "
            f"| {s['score_gap']:.3f} | {s['g_adv_std']:.3f} | {v['wall_time_s'] / 60:.1f} min |"
        )
    return lines


def ablation_reading(ablation: dict[str, Any]) -> str:
    """One computed sentence under an ablation's table: where PSNR is best and how balanced each game was."""
    variants = ablation["variants"]
    psnr = {label: v["evaluation"]["psnr"] for label, v in variants.items()}
    gap = {label: v["stability"]["score_gap"] for label, v in variants.items()}
    best = max(psnr, key=psnr.__getitem__)
    recipe = ablation["recipe_value"]
    versus = f", {psnr[best] - psnr[recipe]:+.2f} dB vs the recipe" if best != recipe and recipe in psnr else ""
    low, high = min(gap, key=gap.__getitem__), max(gap, key=gap.__getitem__)
    headline = f"Highest held-out PSNR: `{best}` ({psnr[best]:.2f} dB{versus})."
    caveat = "One seed per variant, so small PSNR differences may not be significant."
    if ablation["field"] == "adversarial":
        # Each loss scores the discriminator on its own scale, so their gaps are not comparable.
        return f"{headline} The D columns are on each loss's own scale and are not comparable across rows. {caveat}"
    return (
        f"{headline} D real−fake gap from {gap[low]:.3f} (`{low}`) to {gap[high]:.3f} (`{high}`): near 0 the "
        "discriminator no longer tells real from generated (no adversarial signal left), near 1 it wins "
        f"outright. {caveat}"
    )


def render_ablation(ablation: dict[str, Any], plot_name: str) -> str:
    """Markdown page of one ablation: what was varied, the measured table, the curves."""
    lines = [
        f"# Ablation: `{ablation['field']}` on the `{ablation['style']}` recipe",
        "",
        f"The `{ablation['style']}` recipe trained for {ablation['steps']} steps once per value of "
        f"`{ablation['field']}`, with the same seed, data order and every other setting equal. Held-out "
        "metrics are against the filter target on the evaluation photographs at a long side of 512 px; the "
        "game statistics are means over the last quarter of the steps. Wall times are on a shared 2-core CPU "
        f"({ablation['machine']['cpu']}), one thread per run. Produced by `pastiche ablate {ablation['style']} "
        f"--vary {ablation['field']} --values {','.join(ablation['variants']).lower()} --steps {ablation['steps']} "
        "--ship`.",
        "",
        *ablation_table(ablation),
        "",
        ablation_reading(ablation),
        "",
        f"![loss curves per {ablation['field']}]({plot_name})",
        "",
    ]
    return "\n".join(lines)


def ablation_files(directory: Path, field: str) -> tuple[Path, Path, Path]:
    """JSON, markdown and plot paths of the ablation of ``field`` in ``directory``."""
    return directory / f"{field}.json", directory / f"{field}.md", directory / f"{field}.png"


def write_ablation(
    ablation: dict[str, Any], histories: dict[str, dict[str, list[float]]], directory: Path
) -> list[Path]:
    """Write ``<field>.json``, ``<field>.md`` and ``<field>.png`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path, plot_path = ablation_files(directory, ablation["field"])
    json_path.write_text(json.dumps(ablation, indent=2) + "\n")
    md_path.write_text(render_ablation(ablation, plot_path.name))
    figures.save_loss_curves(histories, plot_path)
    return [json_path, md_path, plot_path]


def load_ablations(directory: Path) -> list[dict[str, Any]]:
    """Every committed ablation in ``directory``, ordered by field name."""
    if not directory.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
