"""The report of a run: summary JSON, CSV table, PNG plots and a markdown page."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.locust_run import CPU_WARNING_PERCENT, LoadPhase, LocustResult  # noqa: E402
from benchmarks.triton_metrics import ModelDelta  # noqa: E402


@dataclass
class PhaseResult:
    """One Locust phase with what Triton saw during it."""

    phase: LoadPhase
    group: str
    label: str
    locust: LocustResult
    triton: ModelDelta | None

    def row(self) -> dict[str, object]:
        """Flat row for the CSV summary and the tables."""
        t = self.triton
        return {
            "group": self.group,
            "label": self.label,
            "phase": self.phase.name,
            "user": self.phase.user,
            "model": self.phase.model,
            "loop": self.phase.loop,
            "users": self.phase.users,
            "image_sides": "/".join(str(s) for s in self.phase.image_sides),
            "processes": self.phase.processes,
            "requests": self.locust.requests,
            "failures": self.locust.failures,
            "error_rate": round(self.locust.error_rate, 4),
            "images_per_s": round(self.locust.rps, 2),
            "p50_ms": self.locust.p50_ms,
            "p95_ms": self.locust.p95_ms,
            "p99_ms": self.locust.p99_ms,
            "generator_cpu_mean": round(self.locust.generator_cpu_mean, 1),
            "triton_success": t.success if t else None,
            "triton_avg_batch": round(t.avg_batch_size, 2) if t and t.avg_batch_size else None,
            "triton_queue_ms": round(t.avg_queue_ms, 2) if t and t.avg_queue_ms is not None else None,
            "triton_compute_ms": round(t.avg_compute_ms, 2) if t and t.avg_compute_ms is not None else None,
            "late": self.locust.pacing["late"] if self.locust.pacing else None,
            "dropped": self.locust.pacing["dropped"] if self.locust.pacing else None,
        }


@dataclass
class RunReport:
    """Everything a run measured; ``sections`` are extra markdown blocks (sweeps, baselines)."""

    name: str
    scenario: str
    started: str
    machine: dict
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    target: str = ""
    phases: list[PhaseResult] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    """JSON-ready sweep/baseline numbers, saved in summary.json."""
    notes: list[str] = field(default_factory=list)
    gate_failures: list[str] = field(default_factory=list)


def markdown_table(rows: list[dict[str, object]], columns: list[str]) -> str:
    """A GitHub markdown table of the given columns."""
    def cell(value: object) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def plot_latency_over_time(phases: list[PhaseResult], path: Path) -> None:
    """p50/p95/p99 per second for every phase, one panel each."""
    count = len(phases)
    columns = min(3, count)
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.2 * rows), squeeze=False)
    for axis, result in zip(axes.flat, phases):
        history = result.locust.history
        times = [h["t"] for h in history]
        for key, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
            axis.plot(times, [h[key] for h in history], style, label=key)
        axis.set_title(f"{result.group}: {result.label}", fontsize=9)
        axis.set_xlabel("s")
        axis.set_ylabel("latency (ms)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[count:]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_throughput_vs_latency(phases: list[PhaseResult], path: Path) -> None:
    """images/s against p50 and p99 latency, one series per group of the sweep."""
    figure, axis = plt.subplots(figsize=(7.5, 5))
    groups: dict[str, list[PhaseResult]] = {}
    for result in phases:
        groups.setdefault(result.group, []).append(result)
    for group, members in groups.items():
        xs = [m.locust.rps for m in members]
        line = axis.plot(xs, [m.locust.p99_ms for m in members], "o", label=f"{group} (p99)")[0]
        axis.plot(xs, [m.locust.p50_ms for m in members], "x", color=line.get_color(), label=f"{group} (p50)")
        for member in members:
            axis.annotate(member.label, (member.locust.rps, member.locust.p99_ms), fontsize=6, alpha=0.8)
    axis.set_xlabel("throughput (images/s)")
    axis.set_ylabel("latency (ms)")
    axis.set_yscale("log")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7)
    axis.set_title("Throughput vs latency")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def write_report(report: RunReport, out_dir: Path) -> Path:
    """Write summary.json, summary.csv, the plots and report.md; returns the markdown path."""
    rows = [p.row() for p in report.phases]
    summary = {
        "name": report.name, "scenario": report.scenario, "started": report.started, "target": report.target,
        "machine": report.machine, "load_average_start": report.load_start, "load_average_end": report.load_end,
        "phases": [{**row, "locust": {k: v for k, v in asdict(p.locust).items() if k != "history"},
                    "triton": asdict(p.triton) if p.triton else None} for row, p in zip(rows, report.phases)],
        "extra": report.extra, "notes": report.notes, "gate_failures": report.gate_failures,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if rows:
        with open(out_dir / "summary.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        plot_latency_over_time(report.phases, out_dir / "latency_over_time.png")
        plot_throughput_vs_latency(report.phases, out_dir / "throughput_vs_latency.png")

    m = report.machine
    lines = [
        f"# Benchmark report: {report.name}",
        "",
        f"Scenario `{report.scenario}`, started {report.started}, target: {report.target}.",
        "",
        "## Machine and conditions",
        "",
        f"- CPU: {m['cpu_model']} — {m['logical_cores']} logical cores ({m['physical_cores']} physical), "
        f"{m['memory_gib']} GiB RAM, no GPU; flags: {', '.join(m['cpu_flags']) or 'n/a'}",
        f"- Software: Python {m['python']}, " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
        f"- Load average (1/5/15 min) at start: {'/'.join(f'{x:.2f}' for x in report.load_start)}, "
        f"at end: {'/'.join(f'{x:.2f}' for x in report.load_end)}. The load generator, Triton and the gateway "
        "share this machine's cores, so absolute numbers are a floor for a dedicated server; ratios measured "
        "side by side in one run are the trustworthy part.",
    ]
    lines += [f"- {note}" for note in report.notes]
    saturated = [p for p in report.phases if p.locust.generator_saturated]
    if saturated:
        lines += ["", "> **Warning: load generator CPU above "
                  f"{CPU_WARNING_PERCENT:.0f}%** in: " + ", ".join(p.phase.name for p in saturated)
                  + ". Those throughputs are limited by Locust, not by the server; rerun with `--processes`."]
    if report.gate_failures:
        lines += ["", "> **Gate failed:** " + "; ".join(report.gate_failures)]
    if rows:
        lines += [
            "", "## Load phases", "",
            "Latency is measured by Locust from send to last byte (ms); images/s is Locust's request rate. "
            "Triton columns come from its Prometheus metrics scraped before and after each phase "
            "(avg batch = inference count ÷ execution count).", "",
            markdown_table(rows, ["group", "label", "loop", "requests", "error_rate", "images_per_s", "p50_ms",
                                  "p95_ms", "p99_ms", "triton_avg_batch", "triton_queue_ms", "triton_compute_ms",
                                  "generator_cpu_mean", "late", "dropped"]),
            "", "![latency percentiles over time](latency_over_time.png)", "",
            "![throughput vs latency](throughput_vs_latency.png)",
        ]
    for title, body in report.sections:
        lines += ["", f"## {title}", "", body]
    lines += ["", "## Files", "", "`summary.json` and `summary.csv` hold every number above; per phase, "
              "`<phase>_stats.csv`, `<phase>_stats_history.csv`, `<phase>_failures.csv` and `<phase>.html` "
              "are Locust's own outputs (kept out of git for committed reports)."]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
