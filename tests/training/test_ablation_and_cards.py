"""Ablations and model cards: measured numbers flow into the rendered documents."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from export.styles import BundledStyle
from export.training.ablation import (
    ablation_reading,
    load_ablations,
    parse_values,
    run_ablation,
    write_ablation,
)
from export.training.generators import GeneratorSpec
from export.training.model_card import render_model_card
from pastiche.cli import app
from tests.training.test_training import TINY


def test_parse_values_converts_and_validates() -> None:
    assert parse_values("stabiliser", "spectral, none", TINY) == ("spectral", "none")
    assert parse_values("lr_d", "1e-4,4e-4", TINY) == (1e-4, 4e-4)
    assert parse_values("norm", "instance,batch", TINY) == ("instance", "batch")
    assert parse_values("permute_channels", "true,False", TINY) == (True, False)
    with pytest.raises(ValueError, match="bool"):
        parse_values("permute_channels", "true,maybe", TINY)
    with pytest.raises(ValueError, match="cannot vary"):
        parse_values("seed", "1,2", TINY)
    with pytest.raises(ValueError, match="at least two"):
        parse_values("stabiliser", "none", TINY)
    with pytest.raises(ValueError, match="float"):
        parse_values("lr_d", "fast,slow", TINY)
    with pytest.raises(ValueError, match="stabiliser"):
        parse_values("stabiliser", "spectral,dropout", TINY)


def test_ablation_runs_each_variant_and_renders(tmp_path: Path) -> None:
    style = BundledStyle(name="tiny", title="Tiny", description="test", recipe=TINY, margin_db=3.0)
    ablation, histories = run_ablation(style, "stabiliser", ("spectral", "none"), 2, tmp_path / "runs")
    assert ablation is not None
    assert set(ablation["variants"]) == {"spectral", "none"} == set(histories)
    assert ablation["recipe_value"] == "spectral"
    for variant in ablation["variants"].values():
        assert variant["evaluation"]["psnr"] > 0
        assert set(variant["stability"]) == {"d_loss", "score_gap", "g_adv_std", "g_l1"}
    written = write_ablation(ablation, histories, tmp_path / "out")
    assert [p.name for p in written] == ["stabiliser.json", "stabiliser.md", "stabiliser.png"]
    assert load_ablations(tmp_path / "out") == [ablation]
    page = written[1].read_text()
    assert "**spectral** (recipe)" in page
    assert f"{ablation['variants']['none']['evaluation']['psnr']:.2f} dB" in page


def _ablation(field: str, recipe: str, rows: dict[str, tuple[float, float]]) -> dict[str, object]:
    """A committed-ablation-shaped dict with (PSNR, real−fake gap) per variant."""
    return {
        "field": field,
        "recipe_value": recipe,
        "variants": {
            label: {"evaluation": {"psnr": psnr}, "stability": {"score_gap": gap}}
            for label, (psnr, gap) in rows.items()
        },
    }


def test_ablation_reading_names_the_best_variant_and_the_game_balance() -> None:
    reading = ablation_reading(
        _ablation("stabiliser", "spectral", {"spectral": (20.3, 0.4), "none": (20.8, 0.8), "r1": (20.6, 0.0)})
    )
    assert "Highest held-out PSNR: `none` (20.80 dB, +0.50 dB vs the recipe)" in reading
    assert "from 0.000 (`r1`) to 0.800 (`none`)" in reading
    recipe_best = ablation_reading(_ablation("norm", "batch", {"batch": (20.3, 0.4), "instance": (14.5, 0.7)}))
    assert "`batch` (20.30 dB)." in recipe_best and "vs the recipe" not in recipe_best
    # Losses score the discriminator on different scales: no gap comparison across them.
    adversarial = ablation_reading(_ablation("adversarial", "lsgan", {"lsgan": (20.3, 0.4), "hinge": (20.3, 1.8)}))
    assert "not comparable" in adversarial and "gap from" not in adversarial


def test_model_card_states_measured_numbers(tiny_run: Path) -> None:
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    config = replace(TINY, style="cartoon", target="cartoon", generator=GeneratorSpec("resnet", 4, 1, norm="batch"))
    style = BundledStyle(name="cartoon", title="Cartoon", description="test", recipe=config, margin_db=4.5)
    card = render_model_card(style, metrics, [])
    e = metrics["evaluation"]
    for number in (e["psnr"], e["identity_psnr"], e["photos"][0]["model"]["psnr"]):
        assert f"{number:.2f} dB" in card
    assert "≥ 4.5 dB" in card
    assert f"{metrics['steps']} steps" in card
    assert "shared" in card  # the wall time's machine caveat
    assert "BatchNorm" in card


def test_ablate_cli_rejects_bad_fields() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["ablate", "watercolor", "--vary", "seed", "--values", "1,2"])
    assert result.exit_code == 2 and "cannot vary" in result.output
    assert runner.invoke(app, ["ablate", "nope"]).exit_code == 2
