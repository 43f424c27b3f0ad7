"""The shipped styles: files within limits, strict loading, and held-out quality above identity.

The margins come from the registry and are stated in each model card; this is the PyTorch half
of the check (the served half runs the same :func:`evaluate` through Triton).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from export.checkpoint import load_generator
from export.families import FAMILIES
from export.styles import BUNDLED_STYLES, STYLES_DIR, BundledStyle
from export.training.ablation import ablation_files, load_ablations, render_ablation
from export.training.data import eval_images
from export.training.evaluation import evaluate, torch_stylizer
from export.training.model_card import (
    ABLATIONS_DIR,
    INDEX_MD,
    README,
    render_index,
    render_model_card,
    render_readme_gallery,
    replace_readme_gallery,
)
from export.training.report import sha256
from export.training.trainer import TrainConfig

MAX_CHECKPOINT_BYTES = 10 * 1024 * 1024
STYLES = sorted(BUNDLED_STYLES)


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    return eval_images()


def test_at_least_three_styles_on_two_families_all_shipped() -> None:
    assert len(BUNDLED_STYLES) >= 3
    assert all(style.checkpoint.is_file() for style in BUNDLED_STYLES.values())
    assert len({s.family for s in BUNDLED_STYLES.values()}) >= 2
    assert all(s.family in FAMILIES for s in BUNDLED_STYLES.values())


@pytest.mark.parametrize("name", STYLES)
def test_shipped_files_are_present_and_consistent(name: str) -> None:
    style = BUNDLED_STYLES[name]
    assert style.checkpoint.stat().st_size <= MAX_CHECKPOINT_BYTES
    metrics = style.metrics()
    assert TrainConfig.from_dict(metrics["config"]) == style.recipe, (
        "checkpoint was not trained with the registry recipe"
    )
    assert metrics["generator"]["sha256"] == sha256(style.checkpoint) == style.checkpoint_sha256()
    with Image.open(style.preview) as preview:
        assert preview.format == "PNG" and preview.width > 2 * preview.height
    card = style.model_card.read_text()
    assert f"≥ {style.margin_db:.1f} dB" in card
    assert f"{metrics['evaluation']['psnr']:.2f} dB" in card


@pytest.mark.parametrize("name", STYLES)
def test_checkpoint_is_a_plain_state_dict_that_loads_strictly(name: str) -> None:
    style = BUNDLED_STYLES[name]
    state = torch.load(style.checkpoint, map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    style.build_generator().load_state_dict(state, strict=True)


@pytest.mark.parametrize("name", STYLES)
def test_export_pipeline_detects_the_family_and_config(name: str) -> None:
    style = BUNDLED_STYLES[name]
    loaded = load_generator(style.checkpoint)
    assert loaded.spec.name == style.family
    assert (
        dataclasses.replace(loaded.config, **_serving_defaults(loaded.config)) == style.recipe.generator.module_config()
    )


def _serving_defaults(config: object) -> dict[str, object]:
    # Serving-only options (e.g. how BatchNorm statistics are used) are not part of the checkpoint.
    names = {f.name for f in dataclasses.fields(config)}
    return {"batch_stats": "running"} if "batch_stats" in names else {}


@pytest.mark.parametrize("name", STYLES)
def test_generator_beats_identity_on_held_out_photos_by_its_margin(name: str, images: dict[str, np.ndarray]) -> None:
    style: BundledStyle = BUNDLED_STYLES[name]
    stylize = torch_stylizer(style.load_generator(), style.family_spec.value_range)
    evaluation = evaluate(stylize, style.target, images)
    assert evaluation.psnr_margin >= style.margin_db, json.dumps(evaluation.to_dict(), indent=1)
    assert evaluation.ssim > evaluation.identity_ssim
    recorded = style.metrics()["evaluation"]
    # The card's numbers are reproducible from the committed checkpoint.
    assert evaluation.psnr == pytest.approx(recorded["psnr"], abs=0.05)
    assert evaluation.ssim == pytest.approx(recorded["ssim"], abs=0.005)


def test_committed_documents_are_rendered_from_committed_metrics() -> None:
    ablations = load_ablations(ABLATIONS_DIR)
    for name in STYLES:
        style = BUNDLED_STYLES[name]
        assert style.model_card.read_text() == render_model_card(style, style.metrics(), ablations), style.name
    assert (STYLES_DIR / INDEX_MD).read_text() == render_index(list(BUNDLED_STYLES.values()))
    for ablation in ablations:
        _, page, plot = ablation_files(ABLATIONS_DIR, ablation["field"])
        assert page.read_text() == render_ablation(ablation, plot.name)
        assert plot.is_file()
    readme = README.read_text()
    assert render_readme_gallery(list(BUNDLED_STYLES.values())) in readme
    assert replace_readme_gallery(readme, list(BUNDLED_STYLES.values())) == readme


def test_readme_gallery_shows_every_preview_and_needs_its_markers() -> None:
    gallery = render_readme_gallery(list(BUNDLED_STYLES.values()))
    for style in BUNDLED_STYLES.values():
        assert f"(export/styles/{style.name}/preview.png)" in gallery
    with pytest.raises(ValueError, match="markers"):
        replace_readme_gallery("# no gallery here\n", list(BUNDLED_STYLES.values()))


@pytest.mark.parametrize("name", STYLES)
def test_served_metadata_describes_the_family(name: str) -> None:
    style = BUNDLED_STYLES[name]
    metadata = style.metadata()
    assert metadata.architecture == style.family
    assert metadata.size_multiple == style.family_spec.size_multiple
    assert metadata.title == style.title and metadata.description
