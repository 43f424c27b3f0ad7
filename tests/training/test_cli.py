"""``pastiche train`` end to end at tiny width: outputs, resume, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image
from typer.testing import CliRunner

from export.families.resnet import ResnetConfig, ResnetGenerator
from export.photos import EVALUATION_PHOTOS
from pastiche.cli import app
from tests.training.conftest import TINY_ARGS

runner = CliRunner()
TINY = TINY_ARGS


def test_train_writes_checkpoint_pictures_and_metrics_then_resumes(tiny_run: Path) -> None:
    out = tiny_run
    for name in ("latest_net_G.pth", "training_state.pt", "metrics.json", "preview.png", "samples.png", "losses.png"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 2
    evaluation = metrics["evaluation"]
    assert {p["photo"] for p in evaluation["photos"]} == set(EVALUATION_PHOTOS)
    assert evaluation["psnr_margin"] == evaluation["psnr"] - evaluation["identity_psnr"]
    assert metrics["generator"]["checkpoint_bytes"] == (out / "latest_net_G.pth").stat().st_size
    ResnetGenerator(ResnetConfig(ngf=4, n_blocks=1, norm="batch")).load_state_dict(
        torch.load(out / "latest_net_G.pth"), strict=True
    )
    with Image.open(out / "preview.png") as preview:
        assert preview.mode == "RGB" and preview.width > 2 * preview.height

    again = runner.invoke(app, ["train", "cartoon", "--steps", "2", *TINY, "--out", str(out)])
    assert again.exit_code == 1
    assert "--resume" in again.output

    resumed = runner.invoke(app, ["train", "cartoon", "--steps", "3", *TINY, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3


def test_resume_without_a_run_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", "cartoon", "--steps", "1", *TINY, "--out", str(tmp_path / "none"), "--resume"]
    )
    assert result.exit_code == 1
    assert "nothing to resume" in result.output


def test_unknown_style_and_bad_options_are_usage_errors(tmp_path: Path) -> None:
    assert runner.invoke(app, ["train", "oil-painting", "--out", str(tmp_path)]).exit_code == 2
    bad = runner.invoke(app, ["train", "cartoon", "--stabiliser", "dropout", "--out", str(tmp_path)])
    assert bad.exit_code == 2
    assert "stabiliser" in bad.output


def test_ship_refuses_a_recipe_other_than_the_registry(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "cartoon", "--steps", "1", *TINY, "--out", str(tmp_path), "--ship"])
    assert result.exit_code == 2
    assert "registry" in result.output
