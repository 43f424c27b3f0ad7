"""Run a named scenario: phases under load, Triton metrics around each, gates, and the report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from benchmarks.locust_run import LoadPhase, run_locust
from benchmarks.machine import describe_machine, load_average
from benchmarks.report import PhaseResult, RunReport, write_report
from benchmarks.target import Endpoints
from benchmarks.triton_metrics import ModelCounters, ModelDelta, scrape

RESULTS_DIR = Path("benchmarks/results")


@dataclass(frozen=True)
class Gate:
    """CI thresholds: a phase over either makes the run exit non-zero."""

    max_error_rate: float | None = None
    max_p95_ms: float | None = None

    def failures(self, phases: list[PhaseResult]) -> list[str]:
        problems = []
        for result in phases:
            if self.max_error_rate is not None and result.locust.error_rate > self.max_error_rate:
                problems.append(f"{result.phase.name}: error rate {result.locust.error_rate:.2%} > {self.max_error_rate:.2%}")
            if self.max_p95_ms is not None and result.locust.p95_ms > self.max_p95_ms:
                problems.append(f"{result.phase.name}: p95 {result.locust.p95_ms:.0f} ms > {self.max_p95_ms:.0f} ms")
        return problems


@dataclass
class BenchOptions:
    """Command-line choices shared by every scenario."""

    users: int | None = None
    rate: float | None = None
    spawn_rate: float | None = None
    duration_s: float | None = None
    model: str | None = None
    image_sides: tuple[int, ...] | None = None
    cache_bust: bool = True
    api_key: str = ""
    processes: int | None = None
    """None: one process, rerun with one per core when Locust saturated its core."""
    endpoints: Endpoints | None = None
    """A running stack; None starts one on free ports."""
    gate: Gate = field(default_factory=Gate)
    perf_venv: Path = Path(".pastiche/perf-venv")


@dataclass
class RunContext:
    """What a scenario gets: where to write, how to run phases, and the report it fills."""

    out_dir: Path
    options: BenchOptions
    report: RunReport
    console: Console

    def run_phase(self, phase: LoadPhase, group: str, label: str, metrics_url: str | None, metrics_model: str | None) -> PhaseResult:
        """Run one phase with Triton metrics scraped around it; adds it to the report."""
        if self.options.processes:
            phase = replace(phase, processes=self.options.processes)
        self.console.print(f"[bold]{group}[/] {label}: {phase.user} {phase.loop}, {phase.duration_s:g} s …")
        before = scrape(metrics_url) if metrics_url else None
        locust = run_locust(phase, self.out_dir / "locust")
        cores = os.cpu_count() or 1
        if self.options.processes is None and locust.generator_saturated and cores > 1 and phase.processes == 1:
            self.console.print("  load generator saturated one core: rerunning with --processes")
            phase = replace(phase, processes=cores, name=f"{phase.name}-p{cores}")
            before = scrape(metrics_url) if metrics_url else None
            locust = run_locust(phase, self.out_dir / "locust")
        triton = None
        if metrics_url and metrics_model and before is not None:
            after = settled_scrape(metrics_url)
            triton = ModelDelta.between(before.get(metrics_model, ModelCounters()), after.get(metrics_model, ModelCounters()))
        result = PhaseResult(phase, group, label, locust, triton)
        self.report.phases.append(result)
        self.console.print(
            f"  {locust.rps:.2f} images/s, p50 {locust.p50_ms:.0f} ms, p99 {locust.p99_ms:.0f} ms, "
            f"errors {locust.error_rate:.1%}, generator CPU {locust.generator_cpu_mean:.0f}%"
            + (f", Triton avg batch {triton.avg_batch_size:.2f}" if triton and triton.avg_batch_size else "")
        )
        return result


def settled_scrape(metrics_url: str, timeout_s: float = 6.0) -> dict[str, ModelCounters]:
    """Scrape until two consecutive scrapes agree, so late-finishing requests are counted."""
    previous = scrape(metrics_url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = scrape(metrics_url)
        if current == previous:
            return current
        previous = current
    return previous


def result_dir(root: Path, name: str, now: datetime) -> Path:
    """``<root>/<UTC timestamp>-<name>``."""
    return root / f"{now.strftime('%Y%m%dT%H%M%SZ')}-{name}"


Scenario = Callable[[RunContext], None]


def run_scenario(
    scenario_name: str, scenario: Scenario, options: BenchOptions, name: str | None = None,
    results_root: Path = RESULTS_DIR, console: Console | None = None,
) -> tuple[Path, RunReport]:
    """Run ``scenario`` and write its report; returns the result directory and the report."""
    console = console or Console(stderr=True)
    now = datetime.now(timezone.utc)
    out_dir = result_dir(results_root, name or scenario_name, now)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = RunReport(
        name=name or scenario_name, scenario=scenario_name, started=now.isoformat(timespec="seconds"),
        machine=describe_machine(), load_start=load_average(),
    )
    context = RunContext(out_dir, options, report, console)
    try:
        scenario(context)
    finally:
        report.load_end = load_average()
        report.gate_failures = options.gate.failures(report.phases)
        path = write_report(report, out_dir)
        console.print(f"report: {path}")
    return out_dir, report
