"""Prometheus metrics (``pastiche_gateway_*``), one registry per app so tests can build several apps."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

STAGES = ("decode", "triton", "encode", "storage")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class BatchStats:
    """Triton's cumulative counters for one model: inferences (requests' images) and executions."""

    inferences: float
    executions: float

    @property
    def average_batch_size(self) -> float:
        """Images per model execution; 0 before the first execution."""
        return self.inferences / self.executions if self.executions else 0.0


def parse_batch_stats(metrics_text: str) -> dict[str, BatchStats]:
    """Per-model ``nv_inference_count`` and ``nv_inference_exec_count`` summed over versions."""
    counts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for family in text_string_to_metric_families(metrics_text):
        if family.name not in {"nv_inference_count", "nv_inference_exec_count"}:
            continue
        slot = 0 if family.name == "nv_inference_count" else 1
        for sample in family.samples:
            counts[sample.labels.get("model", "")][slot] += sample.value
    return {model: BatchStats(*values) for model, values in counts.items()}


class GatewayMetrics:
    """Every metric the gateway exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "pastiche_gateway_requests", "HTTP requests by route, method, status and style.",
            ["route", "method", "status", "style"], registry=self.registry,
        )
        self.request_latency = Histogram(
            "pastiche_gateway_request_duration_seconds", "Whole request latency by route.",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.stage_latency = Histogram(
            "pastiche_gateway_stage_duration_seconds",
            "Latency of one stylize stage: decode (decode+resize+pad), triton (queue+infer), encode, storage.",
            ["stage"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.cache = Counter(
            "pastiche_gateway_cache_lookups", "Result cache lookups by outcome (hit, miss).",
            ["outcome"], registry=self.registry,
        )
        self.inflight = Gauge(
            "pastiche_gateway_inflight_requests", "Stylize requests being processed now.", registry=self.registry,
        )
        self.rejections = Counter(
            "pastiche_gateway_rejections", "Requests refused before processing, by reason.",
            ["reason"], registry=self.registry,
        )
        self.disconnects = Counter(
            "pastiche_gateway_client_disconnects",
            "Stylize requests abandoned because the client went away (their Triton call was cancelled).",
            registry=self.registry,
        )
        self.bucket_shapes = Counter(
            "pastiche_gateway_bucket_requests", "Inference requests by padded tensor shape (HxW).",
            ["style", "shape"], registry=self.registry,
        )
        self.padding_ratio = Histogram(
            "pastiche_gateway_padding_ratio", "Padded pixels ÷ image pixels sent to Triton (1 = no padding).",
            buckets=(1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0, 8.0), registry=self.registry,
        )
        self.batch_size = Gauge(
            "pastiche_gateway_triton_average_batch_size",
            "Batch efficiency: Triton's inference count ÷ execution count per model since it started.",
            ["model"], registry=self.registry,
        )
        self.triton_inferences = Gauge(
            "pastiche_gateway_triton_inferences", "Triton's nv_inference_count per model.", ["model"],
            registry=self.registry,
        )
        self.triton_executions = Gauge(
            "pastiche_gateway_triton_executions", "Triton's nv_inference_exec_count per model.", ["model"],
            registry=self.registry,
        )

    def record_batch_stats(self, stats: dict[str, BatchStats]) -> None:
        """Copy Triton's counters (read at scrape time) into the gateway's gauges."""
        for model, stat in stats.items():
            self.batch_size.labels(model).set(stat.average_batch_size)
            self.triton_inferences.labels(model).set(stat.inferences)
            self.triton_executions.labels(model).set(stat.executions)
