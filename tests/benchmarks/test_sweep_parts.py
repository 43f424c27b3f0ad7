"""Sweep building blocks without a server: variant configs, FLOP counting, perf_analyzer CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.ceiling import count_flops, node_flops, sgemm_gflops
from benchmarks.perf_analyzer import PerfAnalyzerMissing, locate, parse_csv
from benchmarks.sweep import SweepSettings, style_metadata, variant_config_text, variants
from deploy.repository import parse_config

PERF_CSV = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,"
    "Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency\n"
    "2,3.30592,29,8203,4781,80,599074,2900,2,594843,690748,781579,789279\n"
)


def test_variants_cover_batching_instances_precision_and_spinning() -> None:
    settings = SweepSettings(delays_us=(1000, 5000), max_instances=2)
    found = {v.name: v for v in variants(settings)}
    assert set(found) == {"sweep-nobatch", "sweep-d1000", "sweep-d5000", "sweep-i2", "sweep-int8", "sweep-spin"}
    off = parse_config(variant_config_text(found["sweep-nobatch"], style_metadata(settings, "fp32")))
    assert not off.HasField("dynamic_batching")
    on = parse_config(variant_config_text(found["sweep-d1000"], style_metadata(settings, "fp32")))
    assert on.dynamic_batching.max_queue_delay_microseconds == 1000
    two = parse_config(variant_config_text(found["sweep-i2"], style_metadata(settings, "fp32")))
    assert two.instance_group[0].count == 2 and "intra_op_threads" in two.parameters
    int8 = parse_config(variant_config_text(found["sweep-int8"], style_metadata(settings, "int8")))
    assert int8.parameters["precision"].string_value == "int8"
    spin = parse_config(variant_config_text(found["sweep-spin"], style_metadata(settings, "fp32")))
    assert spin.parameters["intra_op_spinning"].string_value == "1"
    assert "intra_op_spinning" not in on.parameters  # the served default: spinning off


def test_node_flops_for_conv_and_conv_transpose() -> None:
    # 3x3 conv, 8 -> 16 channels, output 1x16x10x10: 2 * 100 * 16*8*3*3
    assert node_flops("Conv", [(1, 8, 10, 10), (16, 8, 3, 3)], (1, 16, 10, 10)) == 2 * 100 * 16 * 8 * 9
    # transposed conv scatters each of the 8x5x5 inputs over 4 outputs channels x 3x3
    assert node_flops("ConvTranspose", [(1, 8, 5, 5), (8, 4, 3, 3)], (1, 4, 10, 10)) == 2 * 25 * 8 * 4 * 9
    assert node_flops("MatMul", [(2, 3, 4), (4, 5)], (2, 3, 5)) == 2 * 30 * 4
    assert node_flops("Conv", [(1, 8, 10, 10), None], None) is None


def test_graph_flops_scale_with_pixels(tmp_path: Path) -> None:
    from export.families import RESNET, build_seeded_resnet
    from export.onnx_export import export_onnx

    path = tmp_path / "tiny.onnx"
    export_onnx(build_seeded_resnet(ngf=4, n_blocks=1), RESNET.value_range, path, style_metadata(SweepSettings(), "fp32"))
    small, large = count_flops(path, 32), count_flops(path, 64)
    assert small.counted_nodes == large.counted_nodes > 0
    assert large.total == pytest.approx(4 * small.total)
    assert set(small.by_op) == {"Conv", "ConvTranspose"}


def test_sgemm_rate_is_positive() -> None:
    assert sgemm_gflops(size=128, seconds=0.05) > 0


def test_perf_analyzer_csv_in_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "pa.csv"
    path.write_text(PERF_CSV)
    result = parse_csv(path)
    assert result.concurrency == 2 and result.images_per_s == pytest.approx(3.30592)
    assert result.p50_ms == pytest.approx(594.843) and result.p99_ms == pytest.approx(789.279)
    assert result.server_compute_ms == pytest.approx((80 + 599074 + 2900) / 1000)


def test_missing_perf_analyzer_is_reported(tmp_path: Path) -> None:
    with pytest.raises(PerfAnalyzerMissing, match="make perf-analyzer"):
        locate(tmp_path)


