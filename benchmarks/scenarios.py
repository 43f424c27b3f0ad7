"""Named scenarios: ``quick`` (what ``make bench`` runs), single-endpoint runs, and ``sweep``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.locust_run import LoadPhase
from benchmarks.runner import RunContext, Scenario
from benchmarks.target import Endpoints, local_stack

BUNDLED_STYLE = "watercolor"
GATEWAY_SIDES = (160, 256, 384)
"""Mixed upload sizes for the gateway (it resizes and pads them itself)."""


def build_bundled(repository: Path) -> None:
    """The repository ``make up`` serves (cached ONNX exports under .pastiche/exports)."""
    from deploy.bundled import build_bundled_repository

    build_bundled_repository(repository, Path(".pastiche/exports"))


@contextmanager
def endpoints(context: RunContext, build_repository: Callable[[Path], object] = build_bundled, with_gateway: bool = True) -> Iterator[Endpoints]:
    """The stack from ``--gateway/--triton-*`` options, or a fresh local one on free ports."""
    given = context.options.endpoints
    if given is not None:
        context.report.target = "running stack: " + ", ".join(
            f"{k}={v}" for k, v in (("gateway", given.gateway), ("triton gRPC", given.triton_grpc),
                                    ("triton HTTP", given.triton_http)) if v
        )
        yield given
        return
    workdir = Path(".pastiche/bench-stack") / context.out_dir.name
    workdir.mkdir(parents=True, exist_ok=True)
    context.report.target = "local stack started by the runner (bundled Triton + moto S3 + gateway, free ports)"
    with local_stack(workdir, build_repository, with_gateway=with_gateway, console=context.console) as started:
        yield started


def _require(value: str | None, what: str) -> str:
    if not value:
        raise ValueError(f"this scenario needs the {what} endpoint; pass it or let the runner start a stack")
    return value


def single(user: str) -> Scenario:
    """One phase against one endpoint (closed loop, or open loop with ``--rate``)."""

    def scenario(context: RunContext) -> None:
        options = context.options
        with endpoints(context, with_gateway=user == "gateway") as ep:
            host = {"gateway": ep.gateway, "grpc": ep.triton_grpc, "http": ep.triton_http}[user]
            model = options.model or BUNDLED_STYLE
            sides = options.image_sides or (GATEWAY_SIDES if user == "gateway" else (256,))
            phase = LoadPhase(
                name=f"{user}", user=user, host=_require(host, user), model=model, users=options.users or 4,
                duration_s=options.duration_s or 30, spawn_rate=options.spawn_rate, rate=options.rate or 0.0,
                image_sides=sides, cache_bust=options.cache_bust, api_key=options.api_key,
            )
            metrics_model = model if "," not in model else None
            context.run_phase(phase, user, phase.loop, ep.triton_metrics, metrics_model)

    return scenario


def quick(context: RunContext) -> None:
    """Triton gRPC, Triton HTTP and the gateway closed loop, then gRPC open loop at half the measured rate."""
    options = context.options
    model = options.model or BUNDLED_STYLE
    users = options.users or 2
    duration = options.duration_s or 12
    sides = options.image_sides or (256,)
    with endpoints(context) as ep:
        common = dict(model=model, users=users, duration_s=duration, spawn_rate=options.spawn_rate, image_sides=sides)
        grpc = context.run_phase(
            LoadPhase("triton-grpc", "grpc", _require(ep.triton_grpc, "Triton gRPC"), **common),
            "quick", "Triton gRPC", ep.triton_metrics, model)
        context.run_phase(
            LoadPhase("triton-http", "http", _require(ep.triton_http, "Triton HTTP"), **common),
            "quick", "Triton HTTP", ep.triton_metrics, model)
        if ep.gateway:
            context.run_phase(
                LoadPhase("gateway", "gateway", ep.gateway, **{**common, "image_sides": options.image_sides or GATEWAY_SIDES},
                          cache_bust=options.cache_bust, api_key=options.api_key),
                "quick", "gateway (cache-busting)" if options.cache_bust else "gateway", ep.triton_metrics, model)
        rate = options.rate or max(0.5, round(grpc.locust.rps * 0.5, 1))
        context.run_phase(
            LoadPhase("triton-grpc-open", "grpc", ep.triton_grpc, **{**common, "users": max(users, 4)}, rate=rate),
            "quick", f"gRPC open {rate:g}/s", ep.triton_metrics, model)


def scenarios() -> dict[str, Scenario]:
    """Every scenario ``pastiche bench`` knows, by name."""
    from benchmarks.sweep import sweep

    return {
        "quick": quick,
        "triton-grpc": single("grpc"),
        "triton-http": single("http"),
        "gateway": single("gateway"),
        "sweep": sweep,
    }
