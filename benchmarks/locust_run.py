"""One Locust phase, headless, as a subprocess: its CSV/HTML files, its CPU use, and its numbers."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
USER_CLASSES = {"gateway": "GatewayUser", "grpc": "TritonGrpcUser", "http": "TritonHttpUser"}
CPU_WARNING_PERCENT = 90.0


@dataclass(frozen=True)
class LoadPhase:
    """One load level against one endpoint."""

    name: str
    user: str
    """``gateway``, ``grpc`` or ``http``."""
    host: str
    model: str
    """Triton model (grpc/http) or comma-separated styles (gateway)."""
    users: int
    duration_s: float
    spawn_rate: float | None = None
    """Users started per second; all at once when None."""
    rate: float = 0.0
    """Open loop: total requests per second held by pacing; 0 means closed loop."""
    image_sides: tuple[int, ...] = (256,)
    cache_bust: bool = False
    api_key: str = ""
    processes: int = 1

    @property
    def loop(self) -> str:
        return f"open loop, {self.rate:g} req/s target" if self.rate > 0 else f"closed loop, {self.users} users"


@dataclass
class LocustResult:
    """Aggregated numbers of one phase (times in ms)."""

    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    avg_ms: float
    max_ms: float
    generator_cpu_mean: float
    """Mean CPU % of the busiest Locust process (100 = one core saturated)."""
    generator_cpu_peak: float
    wall_s: float
    pacing: dict[str, int] | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def generator_saturated(self) -> bool:
        return self.generator_cpu_mean > CPU_WARNING_PERCENT


def locust_command(phase: LoadPhase, prefix: Path) -> list[str]:
    """The ``locust`` command line for a phase writing ``<prefix>_stats.csv`` etc."""
    spawn = phase.spawn_rate if phase.spawn_rate else phase.users
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "-u", str(phase.users), "-r", f"{spawn:g}", "-t", f"{max(1, round(phase.duration_s))}s",
        "--host", phase.host, "--csv", str(prefix), "--csv-full-history", "--html", f"{prefix}.html",
        "--stop-timeout", "120", "--exit-code-on-error", "0", "--loglevel", "WARNING", "--only-summary",
        "--image-sides", ",".join(str(s) for s in phase.image_sides),
        "--pacing-file", f"{prefix}_pacing.json", "--json-file", f"{prefix}_final",
    ]
    command += ["--styles", phase.model] if phase.user == "gateway" else ["--model", phase.model]
    if phase.rate > 0:
        command += ["--rate", f"{phase.rate:g}"]
    if phase.cache_bust:
        command.append("--cache-bust")
    if phase.api_key:
        command += ["--api-key", phase.api_key]
    if phase.processes > 1:
        command += ["--processes", str(phase.processes)]
    command.append(USER_CLASSES[phase.user])
    return command


class CpuSampler(threading.Thread):
    """Samples the CPU % of a process tree; keeps the busiest process's value per sample."""

    def __init__(self, pid: int, interval_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval_s = interval_s
        self.samples: list[float] = []
        self.done = threading.Event()
        self.known: dict[int, psutil.Process] = {}

    def run(self) -> None:
        while not self.done.wait(self.interval_s):
            try:
                tree = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            busiest = 0.0
            for proc in tree:
                tracked = self.known.setdefault(proc.pid, proc)
                try:
                    busiest = max(busiest, tracked.cpu_percent(None))
                except psutil.NoSuchProcess:
                    continue
            self.samples.append(busiest)

    def stop(self) -> tuple[float, float]:
        """Stop sampling; (mean, peak) of the busiest process, skipping start-up."""
        self.done.set()
        self.join()
        steady = self.samples[2:] or self.samples or [0.0]
        return sum(steady) / len(steady), max(steady)


def _number(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def percentile(histogram: dict[float, int], fraction: float) -> float:
    """The ``fraction`` quantile of a {response time: count} histogram."""
    total = sum(histogram.values())
    if not total:
        return 0.0
    rank = fraction * total
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)


def parse_final_stats(prefix: Path, test_start: float | None = None) -> dict[str, float]:
    """Totals over every endpoint from ``--json-file``.

    Locust writes that file at shutdown, after ``--stop-timeout`` let in-flight requests finish;
    its CSV ``Aggregated`` row is written when the run time ends and misses them. Throughput
    is requests over the time from ``test_start`` (when given) to the last response.
    """
    entries = json.loads(Path(f"{prefix}_final.json").read_text())
    histogram: dict[float, int] = {}
    requests = failures = 0
    total_ms = max_ms = 0.0
    start, end = float("inf"), 0.0
    for entry in entries:
        requests += entry["num_requests"]
        failures += entry["num_failures"]
        total_ms += entry["total_response_time"]
        max_ms = max(max_ms, entry["max_response_time"] or 0.0)
        for value, count in entry["response_times"].items():
            histogram[float(value)] = histogram.get(float(value), 0) + count
        if entry["num_requests"]:
            start = min(start, entry["start_time"])
            end = max(end, entry["last_request_timestamp"])
    if test_start is not None:
        start = min(start, test_start)
    span = end - start if requests and end > start else 0.0
    return {
        "requests": requests,
        "failures": failures,
        "rps": requests / span if span else 0.0,
        "p50": percentile(histogram, 0.50),
        "p95": percentile(histogram, 0.95),
        "p99": percentile(histogram, 0.99),
        "avg": total_ms / requests if requests else 0.0,
        "max": max_ms,
    }


def parse_history(prefix: Path) -> list[dict[str, float]]:
    """Per-second aggregated rows of ``<prefix>_stats_history.csv`` (time from the first row)."""
    rows = []
    with open(f"{prefix}_stats_history.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] != "Aggregated" or row["50%"] in ("N/A", ""):
                continue
            rows.append({
                "t": _number(row["Timestamp"]),
                "users": _number(row["User Count"]),
                "rps": _number(row["Requests/s"]),
                "p50": _number(row["50%"]),
                "p95": _number(row["95%"]),
                "p99": _number(row["99%"]),
            })
    if rows:
        start = rows[0]["t"]
        for row in rows:
            row["t"] -= start
    return rows


def run_locust(phase: LoadPhase, out_dir: Path) -> LocustResult:
    """Run the phase to completion; raises with Locust's output when it produced no statistics."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / phase.name
    log_path = out_dir / f"{phase.name}.log"
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(locust_command(phase, prefix), stdout=log, stderr=subprocess.STDOUT)
        sampler = CpuSampler(process.pid)
        sampler.start()
        try:
            process.wait(timeout=phase.duration_s + 240)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        cpu_mean, cpu_peak = sampler.stop()
    wall = time.perf_counter() - started
    if process.returncode != 0 or not Path(f"{prefix}_final.json").exists():
        raise RuntimeError(f"locust failed for phase {phase.name} (exit {process.returncode}):\n{log_path.read_text()[-3000:]}")
    pacing_file = Path(f"{prefix}_pacing.json")
    recorded = json.loads(pacing_file.read_text()) if pacing_file.exists() else {}
    stats = parse_final_stats(prefix, recorded.pop("test_start", None))
    if stats["requests"] == 0:
        raise RuntimeError(f"phase {phase.name} completed no request:\n{log_path.read_text()[-3000:]}")
    pacing = recorded if phase.rate > 0 and recorded else None
    return LocustResult(
        requests=int(stats["requests"]),
        failures=int(stats["failures"]),
        rps=stats["rps"],
        p50_ms=stats["p50"],
        p95_ms=stats["p95"],
        p99_ms=stats["p99"],
        avg_ms=stats["avg"],
        max_ms=stats["max"],
        generator_cpu_mean=cpu_mean,
        generator_cpu_peak=cpu_peak,
        wall_s=wall,
        pacing=pacing,
        history=parse_history(prefix),
    )
