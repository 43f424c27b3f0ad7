"""Triton's Prometheus metrics: scrape, pick one model, and take the difference of two scrapes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

COUNTERS = {
    "nv_inference_request_success": "success",
    "nv_inference_request_failure": "failure",
    "nv_inference_count": "inferences",
    "nv_inference_exec_count": "executions",
    "nv_inference_request_duration_us": "request_us",
    "nv_inference_queue_duration_us": "queue_us",
    "nv_inference_compute_input_duration_us": "compute_input_us",
    "nv_inference_compute_infer_duration_us": "compute_infer_us",
    "nv_inference_compute_output_duration_us": "compute_output_us",
}


@dataclass(frozen=True)
class ModelCounters:
    """Cumulative counters of one model (all versions summed)."""

    success: float = 0.0
    failure: float = 0.0
    inferences: float = 0.0
    executions: float = 0.0
    request_us: float = 0.0
    queue_us: float = 0.0
    compute_input_us: float = 0.0
    compute_infer_us: float = 0.0
    compute_output_us: float = 0.0

    def minus(self, earlier: ModelCounters) -> ModelCounters:
        return ModelCounters(**{k: v - getattr(earlier, k) for k, v in asdict(self).items()})


@dataclass(frozen=True)
class ModelDelta:
    """What one model did between two scrapes, in the units people read."""

    success: int
    failure: int
    inferences: int
    executions: int
    avg_batch_size: float | None
    avg_queue_ms: float | None
    avg_compute_ms: float | None
    """Input + infer + output time per request."""
    avg_request_ms: float | None

    @classmethod
    def between(cls, before: ModelCounters, after: ModelCounters) -> ModelDelta:
        d = after.minus(before)
        requests = d.success + d.failure

        def per_request(total_us: float) -> float | None:
            return total_us / requests / 1000 if requests else None

        return cls(
            success=int(d.success),
            failure=int(d.failure),
            inferences=int(d.inferences),
            executions=int(d.executions),
            avg_batch_size=d.inferences / d.executions if d.executions else None,
            avg_queue_ms=per_request(d.queue_us),
            avg_compute_ms=per_request(d.compute_input_us + d.compute_infer_us + d.compute_output_us),
            avg_request_ms=per_request(d.request_us),
        )


def parse_counters(text: str) -> dict[str, ModelCounters]:
    """Per-model counters from a Prometheus exposition text."""
    totals: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            field_name = COUNTERS.get(sample.name) or COUNTERS.get(sample.name.removesuffix("_total"))
            model = sample.labels.get("model")
            if field_name is None or model is None:
                continue
            fields = totals.setdefault(model, {})
            fields[field_name] = fields.get(field_name, 0.0) + sample.value
    return {model: ModelCounters(**fields) for model, fields in totals.items()}


def scrape(metrics_url: str) -> dict[str, ModelCounters]:
    """Scrape Triton's metrics endpoint."""
    response = httpx.get(metrics_url, timeout=10)
    response.raise_for_status()
    return parse_counters(response.text)
