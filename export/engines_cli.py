"""``pastiche engines build|verify``: the GPU repository's engine step (run by ``pastiche-engines``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console

from deploy.model_store import LocalStore, S3Store, StoreError
from export.engines import (
    StepReport,
    build_repository,
    trtexec_builder,
    trtexec_version,
    verify_repository,
)
from export.tensorrt import EngineError, EngineTarget, TensorRTVersion, detect_gpu
from pastiche.s3 import s3_client

console = Console(stderr=True)
engines_app = typer.Typer(
    help="TensorRT plans of the GPU model repository, built and checked on the GPU that serves them.",
    no_args_is_help=True,
)

EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2


class EngineStoreSettings(BaseSettings):
    """S3 settings, read from the same variables as the gateway's (credentials: boto3's ``AWS_*`` chain)."""

    model_config = SettingsConfigDict(env_prefix="PASTICHE_S3_", extra="ignore")

    endpoint_url: str | None = None
    """S3-compatible endpoint; unset or empty for AWS."""
    region: str = "us-east-1"


Repository = Annotated[
    str, typer.Option("--repository", "-r", help="GPU repository: a directory or s3://bucket/prefix/gpu/<Triton tag>.")
]
Models = Annotated[list[str] | None, typer.Option("--model", "-m", help="Only this model (repeatable; default: all).")]
Trtexec = Annotated[str | None, typer.Option(help="trtexec of the serving image's TensorRT (default: the one on PATH).")]
TensorRT = Annotated[
    str | None, typer.Option("--tensorrt-version", help="TensorRT version, instead of asking trtexec (e.g. 10.5.0).")
]


def _open(location: str) -> LocalStore | S3Store:
    """The repository at ``location``; S3 ones are checked to exist."""
    if not location.startswith("s3://"):
        if not Path(location).is_dir():
            raise EngineError(f"{location} is not a directory")
        return LocalStore(Path(location))
    settings = EngineStoreSettings()
    client = s3_client(settings.endpoint_url or None, settings.region)
    store = S3Store.from_url(location, settings.endpoint_url or None, client)
    store.check()
    return store


def _target(trtexec: str | None, tensorrt_version: str | None) -> tuple[EngineTarget, str | None]:
    """This machine's GPU and the serving TensorRT; also the trtexec path when one was found."""
    gpu = detect_gpu()
    if gpu is None:
        raise EngineError("no NVIDIA GPU is visible (nvidia-smi is missing or lists none)")
    path = shutil.which(trtexec) if trtexec else shutil.which("trtexec")
    if tensorrt_version is not None:
        version = TensorRTVersion.parse(tensorrt_version)
    elif path is not None:
        version = trtexec_version(path)
    else:
        raise EngineError(f"trtexec not found ({trtexec or 'not on PATH'}); pass --trtexec or --tensorrt-version")
    target = EngineTarget(tensorrt_version=str(version), gpu_name=gpu.name, compute_capability=gpu.compute_capability)
    return target, path


def _finish(report: StepReport, verb: str) -> None:
    for label in report.built:
        console.print(f"[green]built[/] {label}")
    for label in report.kept:
        console.print(f"[dim]ok[/] {label}")
    if report.mismatches:
        console.print(f"[bold red]{len(report.mismatches)} refused:[/]")
        for problem in report.mismatches:
            console.print(f"  - {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_MISMATCH)
    console.print(f"[green]{verb}:[/] {len(report.built)} built, {len(report.kept)} matching")


@engines_app.command("build")
def build_command(
    repository: Repository,
    source: Annotated[str, typer.Option("--source", "-s", help="ONNX repository: a directory or s3://bucket/prefix/onnx.")],
    trtexec: Trtexec = None,
    tensorrt_version: TensorRT = None,
    timing_cache: Annotated[Path | None, typer.Option(help="TensorRT timing cache file, reused across builds.")] = None,
    model: Models = None,
) -> None:
    """Build the missing plans for this GPU; keep matching ones; refuse (exit 1) mismatched ones."""
    try:
        target, path = _target(trtexec, tensorrt_version)
        if path is None:
            raise EngineError(f"trtexec not found ({trtexec or 'not on PATH'})")
        console.print(f"TensorRT {target.tensorrt_version}, {target.gpu_name} (compute capability {target.compute_capability})")
        source_store, target_store = _open(source), _open(repository)
        with console.status("building") as status:

            def show(line: str) -> None:
                status.update(f"trtexec: {line[-120:]}")

            def event(message: str) -> None:
                console.print(message, highlight=False)

            builder = trtexec_builder(path, TensorRTVersion.parse(target.tensorrt_version), "strong", show)
            report = build_repository(
                source_store, target_store, target, builder, models=model or (), timing_cache=timing_cache, on_event=event
            )
    except (EngineError, StoreError, BotoCoreError, ClientError) as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    _finish(report, "build")


@engines_app.command("verify")
def verify_command(
    repository: Repository,
    trtexec: Trtexec = None,
    tensorrt_version: TensorRT = None,
    model: Models = None,
) -> None:
    """Check every served plan's manifest against this GPU and TensorRT; exit 1 listing mismatches."""
    try:
        target, _ = _target(trtexec, tensorrt_version)
        report = verify_repository(_open(repository), target, models=model or ())
    except (EngineError, StoreError, BotoCoreError, ClientError) as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    _finish(report, "verify")
