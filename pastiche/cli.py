"""The ``pastiche`` command: one entry point whose subcommands each belong to a stage's package."""

from __future__ import annotations

import typer

from benchmarks.cli import bench
from deploy.cli import models_app, publish_command
from export.cli import export_command
from export.engines_cli import engines_app
from export.training.cli import ablate, train
from gateway.cli import keys_app, storage_app

app = typer.Typer(
    name="pastiche",
    help="GAN style transfer on NVIDIA Triton: export, publish, serve and benchmark.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """GAN style transfer on NVIDIA Triton: export, publish, serve and benchmark."""


@app.command()
def up() -> None:
    """Run the whole stack on this machine: S3 endpoint, Triton, gateway (Ctrl-C stops all)."""
    from deploy.stack import run_stack

    raise typer.Exit(run_stack())


app.command("export")(export_command)
app.command("publish")(publish_command)
app.add_typer(models_app, name="models")
app.add_typer(engines_app, name="engines")
app.add_typer(storage_app, name="storage")
app.add_typer(keys_app, name="keys")
app.command(help="Run a benchmark scenario headless and write a report (see benchmarks/README.md).")(bench)
app.command()(train)
app.command()(ablate)
