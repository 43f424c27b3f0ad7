"""Pure logic of the benchmark suite: pacing, metrics arithmetic, stats parsing, gates, FLOPs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.locust_run import LoadPhase, locust_command, parse_final_stats, percentile
from benchmarks.pacing import OpenLoopPacer
from benchmarks.photos import perturb
from benchmarks.triton_metrics import ModelDelta, parse_counters

METRICS = """# HELP nv_inference_request_success Number of successful inference requests
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="a",version="1"} 10
nv_inference_request_success{model="a",version="2"} 5
nv_inference_request_success{model="b",version="1"} 3
# TYPE nv_inference_count counter
nv_inference_count{model="a",version="1"} 30
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="a",version="1"} 6
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="a",version="1"} 15000
# TYPE nv_inference_compute_infer_duration_us counter
nv_inference_compute_infer_duration_us{model="a",version="1"} 150000
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pacer_holds_its_schedule_when_responses_are_fast() -> None:
    clock = FakeClock()
    pacer = OpenLoopPacer(interval_s=1.0, clock=clock)
    assert pacer.wait_seconds() == 0.0
    clock.now = 0.25  # response came back after 250 ms: wait for slot 1 at t=1
    assert pacer.wait_seconds() == pytest.approx(0.75)
    assert pacer.counts.late == 0 and pacer.counts.dropped == 0 and pacer.counts.sent_on_time == 2


def test_pacer_counts_late_and_dropped_slots() -> None:
    clock = FakeClock()
    pacer = OpenLoopPacer(interval_s=1.0, clock=clock)
    pacer.wait_seconds()  # slot 0 at t=0
    clock.now = 1.5  # slot 1 (t=1) is late by 0.5 s
    assert pacer.wait_seconds() == 0.0
    clock.now = 4.2  # slots 2 and 3 passed entirely: dropped; slot 4 is late
    assert pacer.wait_seconds() == 0.0
    counts = pacer.counts
    assert (counts.scheduled, counts.sent_on_time, counts.late, counts.dropped) == (5, 1, 2, 2)


def test_counters_sum_versions_and_delta_derives_batch_size() -> None:
    after = parse_counters(METRICS)
    assert after["a"].success == 15 and after["b"].success == 3
    before = parse_counters(METRICS.replace("} 10", "} 0").replace("} 30", "} 0").replace("} 6", "} 0")
                            .replace("} 15000", "} 0").replace("} 150000", "} 0"))
    delta = ModelDelta.between(before["a"], after["a"])
    assert delta.success == 10
    assert delta.avg_batch_size == pytest.approx(5.0)
    assert delta.avg_queue_ms == pytest.approx(1.5)
    assert delta.avg_compute_ms == pytest.approx(15.0)


def test_percentile_of_histogram() -> None:
    histogram = {10.0: 50, 20.0: 45, 100.0: 5}
    assert percentile(histogram, 0.5) == 10.0
    assert percentile(histogram, 0.95) == 20.0
    assert percentile(histogram, 0.99) == 100.0
    assert percentile({}, 0.5) == 0.0


def test_final_stats_totals_every_endpoint(tmp_path: Path) -> None:
    entries = [
        {"num_requests": 3, "num_failures": 1, "total_response_time": 60.0, "max_response_time": 30.0,
         "response_times": {"10": 1, "20": 1, "30": 1}, "start_time": 100.0, "last_request_timestamp": 102.0},
        {"num_requests": 1, "num_failures": 0, "total_response_time": 40.0, "max_response_time": 40.0,
         "response_times": {"40": 1}, "start_time": 100.5, "last_request_timestamp": 104.0},
    ]
    (tmp_path / "q_final.json").write_text(json.dumps(entries[:1]))
    assert parse_final_stats(tmp_path / "q", test_start=99.0)["rps"] == pytest.approx(1.0)
    (tmp_path / "p_final.json").write_text(json.dumps(entries))
    stats = parse_final_stats(tmp_path / "p")
    assert stats["requests"] == 4 and stats["failures"] == 1
    assert stats["rps"] == pytest.approx(1.0)
    assert stats["avg"] == pytest.approx(25.0)
    assert stats["p99"] == 40.0


def test_locust_command_carries_open_loop_and_processes(tmp_path: Path) -> None:
    phase = LoadPhase("x", "gateway", "http://h:1", "a,b", users=8, duration_s=5, rate=4.0, processes=2,
                      cache_bust=True, api_key="k", image_sides=(128, 256))
    command = locust_command(phase, tmp_path / "x")
    joined = " ".join(command)
    assert "--rate 4" in joined and "--processes 2" in joined and "--cache-bust" in joined
    assert "--styles a,b" in joined and "--api-key k" in joined and "--image-sides 128,256" in joined
    assert command[-1] == "GatewayUser"
    assert phase.loop.startswith("open loop")


def test_perturb_changes_exactly_one_value_by_one() -> None:
    pixels = np.full((8, 8, 3), 100, dtype=np.uint8)
    changed = perturb(pixels, np.random.default_rng(0))
    difference = np.abs(changed.astype(int) - pixels.astype(int))
    assert difference.sum() == 1


def test_pacer_offsets_its_first_slot() -> None:
    clock = FakeClock()
    pacer = OpenLoopPacer(interval_s=1.0, offset_s=0.4, clock=clock)
    assert pacer.wait_seconds() == pytest.approx(0.4)
    clock.now = 0.5
    assert pacer.wait_seconds() == pytest.approx(0.9)
