"""Model cards for the bundled styles, rendered from measured run metrics (never typed by hand)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from export.styles import BUNDLED_STYLES, STYLES_DIR, BundledStyle
from export.training.ablation import (
    ablation_files,
    ablation_reading,
    ablation_table,
    load_ablations,
    render_ablation,
)
from export.training.data import (
    EVAL_PHOTOS,
    EXCLUDED_PHOTOS,
    FILTER_MARGIN,
    TRAIN_PHOTOS,
    Augmentation,
)
from export.training.report import LOSSES_FILE, METRICS_FILE, PREVIEW_FILE, SAMPLES_FILE

INDEX_MD = "README.md"
README = STYLES_DIR.parents[1] / "README.md"
"""The project README, whose bundled-styles gallery is rendered from the same metrics as the index."""
GALLERY_START = "<!-- bundled-styles gallery: rendered by `pastiche train --ship`; do not edit by hand -->"
GALLERY_END = "<!-- end of bundled-styles gallery -->"
ABLATIONS_DIR = STYLES_DIR / "ablations"

STABILISER_TEXT = {
    "spectral": (
        "spectral normalisation on every discriminator convolution (and no InstanceNorm in the discriminator), "
        "chosen to keep the adversarial game balanced rather than for PSNR: without a stabiliser the "
        "discriminator wins outright (largest real−fake gap), and R1 at γ = 1 flattens it until it no longer "
        "separates real from generated, which leaves plain L1 regression"
    ),
    "r1": "R1 gradient penalty on real pairs",
    "none": "none",
}


def _quality_table(evaluation: dict[str, Any]) -> list[str]:
    lines = [
        "| held-out photo | PSNR generator | PSNR identity | gain | SSIM generator | SSIM identity |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for p in evaluation["photos"]:
        m, i = p["model"], p["identity"]
        lines.append(
            f"| {p['photo']} | {m['psnr']:.2f} dB | {i['psnr']:.2f} dB | {m['psnr'] - i['psnr']:+.2f} dB "
            f"| {m['ssim']:.3f} | {i['ssim']:.3f} |"
        )
    lines.append(
        f"| **mean** | **{evaluation['psnr']:.2f} dB** | {evaluation['identity_psnr']:.2f} dB "
        f"| **{evaluation['psnr_margin']:+.2f} dB** | **{evaluation['ssim']:.3f}** | {evaluation['identity_ssim']:.3f} |"
    )
    return lines


def _family_notes(config: dict[str, Any]) -> list[str]:
    """Why the recipe differs from a family's defaults, where it does."""
    spec = config["generator"]
    notes = []
    if spec["family"] == "resnet" and spec["norm"] == "batch":
        notes.append(
            "- **BatchNorm generator** (pix2pix's `--norm batch`) rather than CycleGAN's InstanceNorm: an "
            "InstanceNorm without affine parameters right after the first convolution removes each image's "
            "global colour and brightness, which a filter target keeps."
            + (
                f" Batch statistics are frozen after {config['freeze_norm_from']:.0%} of the steps, so the rest of "
                "training optimises the inference-mode network that is served."
                if config["freeze_norm_from"] < 1.0
                else ""
            )
        )
    if spec["family"] == "transformer_net":
        notes.append(
            "- **Look chosen for the family**: TransformerNet's affine InstanceNorm also discards global colour "
            "and brightness, so it gets the look that depends least on them (a grey sketch built from "
            "luminance ratios). As in pytorch/examples, the generator learning rate is 1e-3 (its unbounded "
            f"0–255 output needs it) and crops are {config['crop']} px: InstanceNorm statistics over a larger "
            "crop are closer to those of a whole photograph."
        )
    return notes


def render_model_card(style: BundledStyle, metrics: dict[str, Any], ablations: list[dict[str, Any]]) -> str:
    """The markdown model card of ``style`` from its run's ``metrics`` and the committed ablations."""
    config = metrics["config"]
    gen = metrics["generator"]
    evaluation = metrics["evaluation"]
    machine = metrics["machine"]
    losses = metrics["final_losses"]
    spec = config["generator"]
    width = (
        f"ngf={spec['width']}, n_blocks={spec['n_blocks']}, norm={spec['norm']}"
        if spec["family"] == "resnet"
        else f"width={spec['width']}"
    )
    augmentation = Augmentation(crop=config["crop"], permute_channels=config["permute_channels"])
    lines = [
        f"# {style.title} — bundled Pastiche style `{style.name}`",
        "",
        f"![photo and {style.title}]({PREVIEW_FILE})",
        "",
        style.description,
        "",
        "| | |",
        "|---|---|",
        f"| family | `{gen['family']}` ({width}), {gen['parameters']:,} parameters |",
        f"| checkpoint | `{gen['checkpoint']}` — plain `state_dict`, {gen['checkpoint_bytes'] / 1e6:.2f} MB, "
        f"sha256 `{gen['sha256'][:16]}…` |",
        f"| target look | `{style.target.name}`: {style.target.description} |",
        f"| held-out PSNR / SSIM vs target | {evaluation['psnr']:.2f} dB / {evaluation['ssim']:.3f} |",
        f"| identity baseline (photo as-is) | {evaluation['identity_psnr']:.2f} dB / {evaluation['identity_ssim']:.3f} |",
        f"| gain over identity | {evaluation['psnr_margin']:+.2f} dB PSNR "
        f"(smallest per photo {evaluation['min_psnr_margin']:+.2f} dB), "
        f"{evaluation['ssim_margin']:+.3f} SSIM |",
        f"| **enforced margin** | **≥ {style.margin_db:.1f} dB** mean held-out PSNR over identity, and SSIM above identity |",
        f"| training | {metrics['steps']} steps, {metrics['wall_time_s'] / 60:.1f} min wall time |",
        "",
        "## What it learned",
        "",
        f"The generator imitates a classical filter, `export/training/targets.py::{style.target.render.__name__}`, "
        "applied to photographs at a long side of about 512 px (its parameters are in pixels, so the look is "
        "defined at that scale). Because the target is computed, quality is measurable: PSNR and SSIM of the "
        "generator's output against the filter's output on photographs never seen in training.",
        "",
        "## Training recipe",
        "",
        f"- **Data**: {len(TRAIN_PHOTOS)} photographs bundled with scikit-image "
        f"({', '.join(p.name for p in TRAIN_PHOTOS)}); colour photographs are sampled twice as often as grey ones. "
        f"Held out for evaluation: {', '.join(p.name for p in EVAL_PHOTOS)}. Unused: "
        + "; ".join(f"{k} ({v})" for k, v in EXCLUDED_PHOTOS.items())
        + ".",
        f"- **Augmentation**: photograph rescaled to a long side drawn uniformly from {augmentation.min_side}–"
        f"{augmentation.max_side} px, a random {config['crop']}×{config['crop']} crop, mirrored with probability ½"
        + (", R/G/B channels shuffled at random" if augmentation.permute_channels else "")
        + f"; the target is then rendered from the augmented crop with {FILTER_MARGIN} px of real context "
        "(equal to the whole-photo render to ≥ 59 dB), so every pair is exact.",
        f"- **Conditional GAN** (pix2pix alternation): per step one discriminator update then one generator update "
        f"on a batch of {config['batch_size']}. Discriminator: conditional PatchGAN on concat(photo, image), "
        f"ndf={config['d_ndf']}, {config['d_layers']} downsampling layers, 4×4 kernels, LeakyReLU(0.2)"
        + (
            ", no normalisation layers (spectral norm instead)."
            if config["stabiliser"] == "spectral"
            else ", InstanceNorm."
        ),
        f"- **Losses**: {config['adversarial'].upper()} adversarial loss + {config['l1_weight']:g} × L1 to the target "
        "(images in [-1, 1]).",
        f"- **Stabiliser**: {STABILISER_TEXT[config['stabiliser']]}"
        + (f" (γ = {config['r1_gamma']:g})" if config["stabiliser"] == "r1" else "")
        + " — see the ablation below.",
        f"- **Optimisers** (two time-scale update rule): Adam β = ({config['beta1']:g}, {config['beta2']:g}), "
        f"generator lr {config['lr_g']:g}, discriminator lr {config['lr_d']:g}, both constant for the first "
        f"{config['decay_from']:.0%} of steps then linearly decayed to 0.",
        f"- **Initialisation / seed**: seed {config['seed']}; "
        + (
            "pix2pix N(0, 0.02) initialisation."
            if spec["family"] == "resnet"
            else "PyTorch default initialisation (as pytorch/examples)."
        ),
        *_family_notes(config),
        "",
        "## Cost",
        "",
        f"{metrics['steps']} steps took **{metrics['wall_time_s'] / 60:.1f} minutes** of wall time on a "
        f"{machine['cores']}-core x86-64 CPU ({machine['cpu']}) with PyTorch limited to {machine['torch_threads']} "
        f"thread(s) (torch {machine['torch']}, OpenCV {machine['opencv']}). The two cores were shared with other "
        "work while it ran (other engineers' builds and tests, and a second training run), so this is an "
        "upper-side figure for this machine class.",
        "",
        "## Losses",
        "",
        f"Means over the last 100 steps: generator L1 {losses['g_l1']:.4f}, generator adversarial "
        f"{losses['g_adv']:.3f}, discriminator {losses['d_loss']:.3f} (D score on real {losses['d_real']:.3f}, "
        f"on generated {losses['d_fake']:.3f}).",
        "",
        f"![loss curves]({LOSSES_FILE})",
        "",
        "## Held-out quality",
        "",
        "Measured through the served uint8 path (round and clamp), at a long side of 512 px. "
        "The identity baseline scores the unmodified photograph against the target.",
        "",
        *_quality_table(evaluation),
        "",
        f"![held-out samples]({SAMPLES_FILE})",
        "",
        f"`tests/training/test_bundled_styles.py` fails if the mean gain drops below {style.margin_db:.1f} dB.",
        "",
    ]
    if ablations:
        lines += [
            "## Measured effect of the recipe's choices",
            "",
            "Each ablation trains one bundled recipe once per value of a single setting (same seed, data and "
            "schedule; its length is stated per table); the recipe's own value is in bold. Full pages with "
            "loss curves: "
            + ", ".join(
                f"[{a['field']}](../ablations/{ablation_files(ABLATIONS_DIR, a['field'])[1].name})" for a in ablations
            )
            + ".",
            "",
        ]
        for ablation in ablations:
            lines += [f"**`{ablation['field']}`** on `{ablation['style']}`, {ablation['steps']} steps:", ""]
            lines += [*ablation_table(ablation), "", ablation_reading(ablation), ""]
    lines += [
        "## Reproduce",
        "",
        "```",
        f"pastiche train {style.name}          # the recipe above, into .pastiche/runs/{style.name}",
        f"pastiche train {style.name} --resume # continue after an interruption",
        f"pastiche train {style.name} --resume --ship  # then copy the result here and re-render this card",
        "```",
        "",
        "## Limitations",
        "",
        "- It reproduces a deterministic filter, not an artist; its ceiling is the filter's look.",
        f"- Trained on {len(TRAIN_PHOTOS)} photographs: unusual content (e.g. faces at other scales, text) "
        "may stylise less faithfully than the held-out scores suggest"
        + (
            "."
            if config["permute_channels"]
            else ", and colours rare in them (such as a large blue sky) can come out desaturated."
        ),
        "- Filter parameters are in pixels: much larger inputs get a finer-grained look than the filter would "
        "give a downscaled copy.",
        "",
    ]
    return "\n".join(lines)


def ship(style: BundledStyle, run_dir: Path) -> list[Path]:
    """Copy a finished run's checkpoint and pictures into the style's directory; re-render cards and galleries."""
    checkpoint = run_dir / style.checkpoint.name
    needed = [checkpoint, run_dir / METRICS_FILE, run_dir / PREVIEW_FILE, run_dir / SAMPLES_FILE, run_dir / LOSSES_FILE]
    missing = [p.name for p in needed if not p.exists()]
    if missing:
        raise FileNotFoundError(f"run {run_dir} is not finished: missing {', '.join(missing)}")
    style.directory.mkdir(parents=True, exist_ok=True)
    shipped = [Path(shutil.copyfile(p, style.directory / p.name)) for p in needed]
    return [*shipped, *rerender_cards(list(BUNDLED_STYLES.values()))]


def rerender_cards(styles: list[BundledStyle]) -> list[Path]:
    """Re-render every shipped card, ablation page, the styles index and the README gallery from committed JSON."""
    written = []
    for style in styles:
        if style.metrics_path.exists():
            style.model_card.write_text(render_model_card(style, style.metrics(), load_ablations(ABLATIONS_DIR)))
            written.append(style.model_card)
    for ablation in load_ablations(ABLATIONS_DIR):
        _, page, plot = ablation_files(ABLATIONS_DIR, ablation["field"])
        page.write_text(render_ablation(ablation, plot.name))
        written.append(page)
    index = STYLES_DIR / INDEX_MD
    index.write_text(render_index(styles))
    written.append(index)
    if README.exists():
        README.write_text(replace_readme_gallery(README.read_text(), styles))
        written.append(README)
    return written


def _gallery(styles: list[BundledStyle], prefix: str, heading: str) -> list[str]:
    """Headline table and previews of the shipped ``styles``, with links relative to ``prefix``."""
    lines = [
        "| style | family | held-out PSNR (identity) | SSIM (identity) | enforced margin | training |",
        "|---|---|---:|---:|---:|---:|",
    ]
    shipped = [s for s in styles if s.metrics_path.exists()]
    for style in shipped:
        m = style.metrics()
        e = m["evaluation"]
        lines.append(
            f"| [{style.title}]({prefix}{style.name}/MODEL_CARD.md) | `{style.family}` "
            f"| {e['psnr']:.2f} dB ({e['identity_psnr']:.2f}) | {e['ssim']:.3f} ({e['identity_ssim']:.3f}) "
            f"| ≥ {style.margin_db:.1f} dB | {m['steps']} steps, {m['wall_time_s'] / 60:.0f} min |"
        )
    lines.append("")
    for style in shipped:
        lines += [f"{heading} {style.title}", "", f"![{style.title}]({prefix}{style.name}/{PREVIEW_FILE})", ""]
    return lines


def render_index(styles: list[BundledStyle]) -> str:
    """export/styles/README.md: the gallery of shipped styles with their previews and headline numbers."""
    lines = [
        "# Bundled styles",
        "",
        "Generators trained in this repository (`pastiche train STYLE`) to imitate classical stylisation "
        "filters; each directory holds the checkpoint in its family's original format, the model card, the "
        "before/after preview and the measured metrics. Numbers are on held-out photographs, against the "
        "filter's output; the identity baseline is the photograph itself.",
        "",
        *_gallery(styles, "", "###"),
    ]
    return "\n".join(lines)


def render_readme_gallery(styles: list[BundledStyle]) -> str:
    """The bundled-styles block of the top-level README (between the gallery markers)."""
    prefix = f"{STYLES_DIR.relative_to(README.parent).as_posix()}/"
    return "\n".join([GALLERY_START, "", *_gallery(styles, prefix, "####"), GALLERY_END])


def replace_readme_gallery(readme: str, styles: list[BundledStyle]) -> str:
    """``readme`` with the block between the gallery markers re-rendered; ValueError if a marker is missing."""
    try:
        start = readme.index(GALLERY_START)
        end = readme.index(GALLERY_END, start) + len(GALLERY_END)
    except ValueError:
        raise ValueError(f"README lacks the gallery markers {GALLERY_START!r} … {GALLERY_END!r}") from None
    return readme[:start] + render_readme_gallery(styles) + readme[end:]
