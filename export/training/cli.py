"""``pastiche train`` and ``pastiche ablate``: train a bundled style, or ablate its stabiliser.

Heavy imports happen inside the commands so that the rest of the ``pastiche`` CLI starts fast.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.progress import Progress

    from export.styles import BundledStyle
    from export.training.trainer import TrainConfig, Trainer

DEFAULT_RUNS = Path(".pastiche/runs")


def _limit_threads(threads: int) -> None:
    import cv2
    import torch

    # The machine is shared: one thread per run by default leaves cores to everyone else.
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


class StopRequest:
    """While active, turns the first Ctrl-C / SIGTERM into a request to stop after the current step.

    Stopping between steps keeps the checkpoint consistent; a second Ctrl-C aborts at once.
    The previous handlers are restored on exit.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __call__(self) -> bool:
        return self.requested


def _recipe(style: str) -> tuple[BundledStyle | None, TrainConfig]:
    """A bundled style's registry recipe, or the ResNet recipe for a bare target filter."""
    from export.styles import BUNDLED_STYLES, resnet_recipe
    from export.training.targets import TARGETS

    if style in BUNDLED_STYLES:
        return BUNDLED_STYLES[style], BUNDLED_STYLES[style].recipe
    if style in TARGETS:
        return None, resnet_recipe(style, style)
    known = sorted(set(BUNDLED_STYLES) | set(TARGETS))
    raise typer.BadParameter(f"unknown style {style!r}; known: {', '.join(known)}", param_hint="STYLE")


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[losses]}"),
    )


def _loss_text(losses: dict[str, float]) -> str:
    return f"L1 {losses['g_l1']:.3f}  G {losses['g_adv']:.3f}  D {losses['d_loss']:.3f}"


def train(
    style: Annotated[str, typer.Argument(help="Bundled style (its registry recipe) or target filter name.")],
    steps: Annotated[int | None, typer.Option(help="Total optimisation steps.")] = None,
    family: Annotated[str | None, typer.Option(help="Generator family: resnet or transformer_net.")] = None,
    width: Annotated[int | None, typer.Option(help="Generator width (ResNet ngf / TransformerNet width).")] = None,
    n_blocks: Annotated[int | None, typer.Option(help="ResNet residual blocks.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Crops per step.")] = None,
    crop: Annotated[int | None, typer.Option(help="Crop side in pixels (multiple of 4).")] = None,
    stabiliser: Annotated[str | None, typer.Option(help="Discriminator stabiliser: spectral, r1 or none.")] = None,
    adversarial: Annotated[str | None, typer.Option(help="Adversarial loss: lsgan or hinge.")] = None,
    lr_g: Annotated[float | None, typer.Option(help="Generator learning rate.")] = None,
    lr_d: Annotated[float | None, typer.Option(help="Discriminator learning rate.")] = None,
    l1_weight: Annotated[float | None, typer.Option(help="Weight of the L1 term.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of weights and data order.")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(help="Steps between full-state checkpoints.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default: .pastiche/runs/STYLE).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run saved in --out.")] = False,
    ship: Annotated[
        bool, typer.Option("--ship", help="Copy the result into export/styles/STYLE and render its model card.")
    ] = False,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads for PyTorch and OpenCV.")] = 1,
) -> None:
    """Train a style's generator with a conditional GAN; writes checkpoints, samples and metrics."""
    from rich.console import Console

    from export.training.model_card import ship as ship_style
    from export.training.report import write_report
    from export.training.targets import get_target
    from export.training.trainer import open_trainer, run_training, with_overrides

    console = Console(stderr=True)
    bundled, recipe = _recipe(style)
    try:
        config = with_overrides(
            recipe,
            steps=steps,
            family=family,
            width=width,
            n_blocks=n_blocks,
            batch_size=batch_size,
            crop=crop,
            stabiliser=stabiliser,
            adversarial=adversarial,
            lr_g=lr_g,
            lr_d=lr_d,
            l1_weight=l1_weight,
            seed=seed,
            checkpoint_every=checkpoint_every,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    if ship and (bundled is None or config != bundled.recipe):
        console.print(
            "[red]--ship only ships a bundled style's registry recipe (export/styles/__init__.py); "
            "drop the overrides or change the registry."
        )
        raise typer.Exit(2)
    run_dir = out or DEFAULT_RUNS / style
    _limit_threads(threads)
    try:
        trainer = open_trainer(config, run_dir, resume=resume)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        console.print(f"[red]{error}")
        raise typer.Exit(1) from None

    title = bundled.title if bundled else get_target(config.target).title
    with StopRequest() as stop, _progress() as progress:
        task = progress.add_task(f"train {style}", total=config.steps, completed=trainer.step_count, losses="")

        def on_step(t: Trainer, losses: dict[str, float]) -> None:
            progress.update(task, completed=t.step_count, losses=_loss_text(losses))
            if t.step_count % t.config.checkpoint_every == 0 and not progress.console.is_terminal:
                # Logs of background runs get a line per checkpoint instead of a live bar.
                progress.console.log(f"step {t.step_count}/{t.config.steps}  {_loss_text(losses)}")

        checkpoint = run_training(trainer, run_dir, on_step=on_step, should_stop=stop)
    if trainer.step_count < config.steps:
        console.print(
            f"stopped at step {trainer.step_count} (checkpoint saved); continue with: "
            f"pastiche train {style} --resume --out {run_dir}"
        )
        raise typer.Exit(130)
    console.print("evaluating on held-out photographs…")
    metrics = write_report(trainer, run_dir, title, checkpoint)
    e = metrics["evaluation"]
    console.print(
        f"{style}: {trainer.step_count} steps in {trainer.elapsed_s / 60:.1f} min; held-out PSNR {e['psnr']:.2f} dB "
        f"(identity {e['identity_psnr']:.2f}, gain {e['psnr_margin']:+.2f}), SSIM {e['ssim']:.3f} "
        f"(identity {e['identity_ssim']:.3f}); checkpoint {checkpoint}"
    )
    if ship and bundled is not None:
        for path in ship_style(bundled, run_dir):
            console.print(f"shipped {path}")


def ablate(
    style: Annotated[str, typer.Argument(help="Bundled style whose recipe is ablated.")],
    vary: Annotated[
        str, typer.Option(help="The one setting to vary (stabiliser, norm, adversarial, lr_d, ...).")
    ] = "stabiliser",
    values: Annotated[str, typer.Option(help="Comma-separated values of --vary to compare.")] = "spectral,r1,none",
    steps: Annotated[int, typer.Option(min=1, help="Steps per variant.")] = 500,
    out: Annotated[Path | None, typer.Option(help="Runs directory (default: .pastiche/runs/ablation-STYLE).")] = None,
    ship: Annotated[
        bool,
        typer.Option("--ship", help="Write the result into export/styles/ablations and re-render the model cards."),
    ] = False,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads for PyTorch and OpenCV.")] = 1,
) -> None:
    """Train a style's recipe once per value of one setting and compare held-out quality and GAN stability."""
    from rich.console import Console

    from export.styles import BUNDLED_STYLES
    from export.training.ablation import (
        ablation_table,
        parse_values,
        run_ablation,
        write_ablation,
    )
    from export.training.model_card import ABLATIONS_DIR, rerender_cards

    console = Console(stderr=True)
    if style not in BUNDLED_STYLES:
        raise typer.BadParameter(
            f"unknown bundled style {style!r}; known: {', '.join(sorted(BUNDLED_STYLES))}", param_hint="STYLE"
        )
    bundled = BUNDLED_STYLES[style]
    try:
        parsed = parse_values(vary, values, bundled.recipe)
    except (ValueError, KeyError) as error:
        raise typer.BadParameter(str(error), param_hint="--vary/--values") from None
    _limit_threads(threads)
    run_dir = out or DEFAULT_RUNS / f"ablation-{style}"
    with StopRequest() as stop, _progress() as progress:
        task = progress.add_task("ablate", total=steps, losses="")

        def on_variant(label: str) -> None:
            progress.update(task, description=f"ablate {style}: {vary}={label}", completed=0)

        def on_step(t: Trainer, losses: dict[str, float]) -> None:
            progress.update(task, completed=t.step_count, losses=_loss_text(losses))
            if t.step_count % t.config.checkpoint_every == 0 and not progress.console.is_terminal:
                progress.console.log(f"{vary}: step {t.step_count}/{t.config.steps}  {_loss_text(losses)}")

        ablation, histories = run_ablation(bundled, vary, parsed, steps, run_dir, on_step, on_variant, stop)
    if ablation is None:
        console.print(f"stopped (checkpoints saved); run the same command again to continue (state in {run_dir})")
        raise typer.Exit(130)
    for line in ablation_table(ablation):
        console.print(line, markup=False)
    written = write_ablation(ablation, histories, ABLATIONS_DIR if ship else run_dir)
    if ship:
        written += rerender_cards(list(BUNDLED_STYLES.values()))
    for path in written:
        console.print(f"wrote {path}")
