"""The Locust users and the runner against the real bundled stack (Triton, S3, gateway)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.runner import BenchOptions, run_scenario
from benchmarks.scenarios import quick
from benchmarks.target import Endpoints
from pastiche.cli import app
from tests.conftest import RunningStack

pytestmark = pytest.mark.integration


def endpoints_of(stack: RunningStack) -> Endpoints:
    return Endpoints(stack.gateway, stack.triton_http, stack.triton_grpc, stack.triton_metrics)


def test_quick_scenario_matches_triton_counts(stack: RunningStack, tmp_path: Path) -> None:
    options = BenchOptions(
        users=2, duration_s=4, endpoints=endpoints_of(stack), processes=1, api_key=stack.api_keys["alpha"]
    )
    out_dir, report = run_scenario("quick", quick, options, results_root=tmp_path)

    for name in ("report.md", "summary.json", "summary.csv", "latency_over_time.png", "throughput_vs_latency.png"):
        assert (out_dir / name).stat().st_size > 0, name
    users = {p.phase.user for p in report.phases}
    assert users == {"grpc", "http", "gateway"}
    for result in report.phases:
        locust_dir = out_dir / "locust"
        assert (locust_dir / f"{result.phase.name}_stats.csv").exists()
        assert (locust_dir / f"{result.phase.name}.html").exists()
        assert result.locust.requests > 0 and result.locust.failures == 0, result.phase.name
        # Every request Locust saw succeed reached the model (warm-up is done before the first
        # scrape; the gateway busts its cache so each request hits Triton). Triton may count a few
        # more: a request still in flight when Locust stops its users completes on the server but
        # is never recorded by the client — at most one per user.
        assert result.triton is not None
        in_flight_at_stop = result.triton.success - result.locust.requests
        assert 0 <= in_flight_at_stop <= result.phase.users, result.phase.name
        assert result.triton.avg_batch_size is not None and result.triton.avg_batch_size >= 1.0
    open_loop = [p for p in report.phases if p.phase.rate > 0]
    assert open_loop and open_loop[0].locust.pacing is not None
    assert open_loop[0].locust.pacing["scheduled"] >= open_loop[0].locust.requests

    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["machine"]["logical_cores"] >= 1
    text = (out_dir / "report.md").read_text()
    assert "closed loop" in text and "open loop" in text and "p99" in text


def test_gate_makes_the_cli_exit_non_zero(stack: RunningStack, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "bench", "triton-grpc", "--users", "1", "--duration", "2", "--processes", "1",
        "--triton-grpc", stack.triton_grpc, "--triton-metrics", stack.triton_metrics,
        "--max-p95-ms", "0.001", "--results-dir", str(tmp_path),
    ])
    assert result.exit_code == 1, result.output
    reports = list(tmp_path.glob("*-triton-grpc/report.md"))
    assert reports and "Gate failed" in reports[0].read_text()


def test_unknown_scenario_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "nope", "--results-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown scenario" in result.output
