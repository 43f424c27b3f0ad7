"""``pastiche bench SCENARIO``: the headless benchmark runner."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SCENARIO_HELP = (
    "quick (make bench: gRPC, HTTP, gateway, open loop), triton-grpc, triton-http, gateway "
    "(one endpoint; closed loop or --rate), sweep (the full side-by-side sweep)"
)


def _sides(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        sides = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter("--image-sides takes comma-separated integers, e.g. 256,512") from None
    if not sides or any(side < 8 or side > 4096 for side in sides):
        raise typer.BadParameter("image sides must lie between 8 and 4096")
    return sides


def bench(
    scenario: Annotated[str, typer.Argument(help=SCENARIO_HELP)],
    users: Annotated[int | None, typer.Option(min=1, help="Concurrent users (closed loop).")] = None,
    rate: Annotated[float | None, typer.Option(min=0.0, help="Open loop: target requests/s over all users.")] = None,
    spawn_rate: Annotated[float | None, typer.Option(min=0.1, help="Users started per second (default: all at once).")] = None,
    duration: Annotated[float | None, typer.Option(min=1.0, help="Seconds per load phase.")] = None,
    model: Annotated[str | None, typer.Option(help="Triton model / gateway style(s), comma-separated for the gateway.")] = None,
    image_sides: Annotated[str | None, typer.Option(help="Comma-separated square image sides, e.g. 256,512.")] = None,
    cache_bust: Annotated[bool, typer.Option(help="Perturb one pixel per gateway request so no response is a cache hit.")] = True,
    api_key: Annotated[str, typer.Option(envvar="PASTICHE_BENCH_API_KEY", help="Gateway API key (sent as Bearer).")] = "",
    processes: Annotated[int | None, typer.Option(min=1, help="Locust processes (default: 1, rerun on all cores if one saturates).")] = None,
    gateway: Annotated[str | None, typer.Option(help="Running gateway URL, e.g. http://10.0.0.5:8080.")] = None,
    triton_grpc: Annotated[str | None, typer.Option(help="Running Triton gRPC host:port.")] = None,
    triton_http: Annotated[str | None, typer.Option(help="Running Triton HTTP URL.")] = None,
    triton_metrics: Annotated[str | None, typer.Option(help="Running Triton metrics URL (…:8002/metrics).")] = None,
    max_error_rate: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Gate: fail when a phase's error rate is above this.")] = None,
    max_p95_ms: Annotated[float | None, typer.Option(min=0.0, help="Gate: fail when a phase's p95 (ms) is above this.")] = None,
    name: Annotated[str | None, typer.Option(help="Result folder suffix (default: the scenario name).")] = None,
    results_dir: Annotated[Path, typer.Option(help="Where result folders are written.")] = Path("benchmarks/results"),
) -> None:
    """Run a benchmark scenario headless and write a report to RESULTS_DIR/<timestamp>-<name>/."""
    from benchmarks.runner import BenchOptions, Gate, run_scenario
    from benchmarks.scenarios import scenarios
    from benchmarks.target import Endpoints

    known = scenarios()
    if scenario not in known:
        typer.echo(f"unknown scenario {scenario!r}; choose one of: {', '.join(known)}", err=True)
        raise typer.Exit(2)
    given = (gateway, triton_grpc, triton_http, triton_metrics)
    endpoints = Endpoints(gateway, triton_http, triton_grpc, triton_metrics) if any(given) else None
    if scenario == "sweep" and endpoints is not None:
        typer.echo("the sweep starts its own Triton with one model per configuration; it takes no endpoints", err=True)
        raise typer.Exit(2)
    options = BenchOptions(
        users=users, rate=rate, spawn_rate=spawn_rate, duration_s=duration, model=model,
        image_sides=_sides(image_sides), cache_bust=cache_bust, api_key=api_key, processes=processes,
        endpoints=endpoints, gate=Gate(max_error_rate, max_p95_ms),
    )
    try:
        out_dir, report = run_scenario(scenario, known[scenario], options, name=name, results_root=results_dir)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if report.gate_failures:
        for failure in report.gate_failures:
            typer.echo(f"gate failed: {failure}", err=True)
        raise typer.Exit(1)
    typer.echo(str(out_dir))
