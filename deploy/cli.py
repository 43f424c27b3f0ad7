"""``pastiche publish`` and ``pastiche models list|rollback|retire``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from deploy.model_store import StoreError, open_store
from deploy.repository import Target

# Publishing loads torch, onnxruntime and tritonclient.http; they are imported in the commands so
# that `import pastiche.cli` stays light (the Triton image runs `pastiche engines` without them).

console = Console(stderr=True)
models_app = typer.Typer(help="List, roll back and retire published style versions.", no_args_is_help=True)

Repository = Annotated[
    str, typer.Option("--repository", "-r", help="Model repository: a directory or s3://bucket/prefix.", envvar="PASTICHE_REPOSITORY")
]
TritonUrl = Annotated[str, typer.Option("--triton", help="Triton HTTP endpoint.", envvar="PASTICHE_TRITON_URL")]
S3Endpoint = Annotated[
    str | None, typer.Option("--s3-endpoint-url", help="S3-compatible endpoint for s3:// repositories.", envvar="AWS_ENDPOINT_URL")
]


def _failures() -> tuple[type[Exception], ...]:
    """The errors a command reports as a message and exit 1."""
    from deploy.artifact import ArtifactError
    from deploy.publish import PublishError
    from deploy.triton_control import TritonUnavailable

    return (ArtifactError, PublishError, StoreError, TritonUnavailable)


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {error}")
    return typer.Exit(1)


def publish_command(
    source: Annotated[Path, typer.Argument(help="Generator checkpoint, or an ONNX file exported by `pastiche export`.")],
    style: Annotated[str, typer.Option("--style", "-s", help="Style (Triton model) name.")],
    repository: Repository = "model_repository",
    triton: TritonUrl = "http://127.0.0.1:8000",
    precision: Annotated[str | None, typer.Option(help="fp32, fp16 or int8 (default: the ONNX file's own).")] = None,
    target: Annotated[Target, typer.Option(help="Triton backend the version is written for.")] = Target.LOCAL,
    tolerance: Annotated[int | None, typer.Option(help="Smoke-test limit in uint8 levels (default per precision).")] = None,
    s3_endpoint_url: S3Endpoint = None,
) -> None:
    """Export + gate, write the next version, load it in Triton, smoke-test it; roll back on any failure."""
    from deploy.artifact import prepare_artifact
    from deploy.publish import publish
    from deploy.triton_control import TritonControl

    control = TritonControl(triton, timeout=30)
    try:
        store = open_store(repository, s3_endpoint_url)
        control.check_live()
        with tempfile.TemporaryDirectory(prefix="pastiche-publish-") as workdir:
            with console.status(f"preparing {source.name} (export and gates)"):
                artifact = prepare_artifact(source, style, precision, Path(workdir))
            for gate, outcome in artifact.gates.items():
                console.print(f"[green]✓[/] gate {gate}: {outcome}")
            with console.status(f"publishing {style}: staging, smoke test, load"):
                result = publish(artifact, style, store, control, target, tolerance=tolerance)
    except _failures() as error:
        raise _fail(error) from None
    finally:
        control.close()
    previous = f" (previous version {result.previous} stays loaded)" if result.previous else ""
    console.print(
        f"[green]✓[/] {style} version {result.version} is live{previous}; smoke test max difference "
        f"{result.smoke.max_difference} ≤ {result.smoke.tolerance}"
    )


@models_app.command("list")
def list_command(repository: Repository = "model_repository", triton: TritonUrl = "http://127.0.0.1:8000", s3_endpoint_url: S3Endpoint = None) -> None:
    """Styles, versions, which is live, Triton's load state, precision and gates."""
    from deploy.publish import list_models
    from deploy.triton_control import TritonControl, TritonUnavailable

    control = TritonControl(triton, timeout=10)
    try:
        store = open_store(repository, s3_endpoint_url)
        try:
            control.check_live()
            listing = list_models(store, control)
        except TritonUnavailable as error:
            console.print(f"[yellow]{error}; load states unknown[/]")
            listing = list_models(store, None)
    except StoreError as error:
        raise _fail(error) from None
    finally:
        control.close()
    table = Table("style", "version", "live", "Triton", "precision", "gates")
    for style, rows in listing.items():
        for row in rows:
            gates = ", ".join(f"{k}: {v}" for k, v in row.gates.items())
            table.add_row(style, str(row.version), "●" if row.live else "", row.loaded, row.precision, gates)
    Console().print(table)


@models_app.command("rollback")
def rollback_command(style: str, repository: Repository = "model_repository", triton: TritonUrl = "http://127.0.0.1:8000", s3_endpoint_url: S3Endpoint = None) -> None:
    """Make the version before the live one live again (the rolled-back version stays on disk)."""
    from deploy.publish import rollback
    from deploy.triton_control import TritonControl

    control = TritonControl(triton, timeout=30)
    try:
        version = rollback(style, open_store(repository, s3_endpoint_url), control)
    except _failures() as error:
        raise _fail(error) from None
    finally:
        control.close()
    console.print(f"[green]✓[/] {style} version {version} is live")


@models_app.command("retire")
def retire_command(style: str, version: int, repository: Repository = "model_repository", triton: TritonUrl = "http://127.0.0.1:8000", s3_endpoint_url: S3Endpoint = None) -> None:
    """Unload and delete a version that is not live."""
    from deploy.publish import retire
    from deploy.triton_control import TritonControl

    control = TritonControl(triton, timeout=30)
    try:
        retire(style, version, open_store(repository, s3_endpoint_url), control)
    except _failures() as error:
        raise _fail(error) from None
    finally:
        control.close()
    console.print(f"[green]✓[/] {style} version {version} retired")
