"""The metrics that Pastiche's dashboard, alerts and autoscaling read: one declared list.

Every PromQL expression under ``deploy/monitoring`` (Grafana dashboard, Prometheus alerts,
prometheus-adapter rule) may only select series declared here, with label matchers on declared
labels; ``tests/deploy`` enforces it. A live ``/metrics`` scrape of the stack must export them:
:func:`missing_from_exposition` says which are absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal



class Source(str, Enum):
    """Which process exports a metric."""

    TRITON = "triton"
    GATEWAY = "gateway"


Kind = Literal["counter", "gauge", "histogram", "summary"]

# Labels that Prometheus attaches to every scraped series (compose: job/instance; Prometheus
# Operator adds namespace/pod/service/container/endpoint), so any query may match on them.
TARGET_LABELS: Final = frozenset(
    {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}
)

_SAMPLE_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

# Series that Prometheus itself records for each scrape target.
SCRAPE_SERIES: Final = frozenset({"up", "scrape_duration_seconds"})


@dataclass(frozen=True)
class MetricFamily:
    """One exported metric family, named as its samples are named in PromQL.

    ``name`` is the sample name of counters and gauges (``nv_inference_count``,
    ``pastiche_gateway_requests_total``) and the base name of histograms and summaries.
    ``labels`` are the labels Pastiche's queries rely on; the exporter may add more.
    """

    name: str
    kind: Kind
    source: Source
    labels: frozenset[str]
    gpu_only: bool = False

    def series(self) -> frozenset[str]:
        """Sample names this family puts into an exposition, i.e. what PromQL can select."""
        if self.kind == "histogram":
            return frozenset({f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count"})
        if self.kind == "summary":
            return frozenset({self.name, f"{self.name}_sum", f"{self.name}_count"})
        return frozenset({self.name})

    def sample_labels(self, series: str) -> frozenset[str]:
        """Labels that samples named ``series`` carry (``le``/``quantile`` where they apply)."""
        if self.kind == "histogram" and series.endswith("_bucket"):
            return self.labels | {"le"}
        if self.kind == "summary" and series == self.name:
            return self.labels | {"quantile"}
        return self.labels


_MODEL = frozenset({"model", "version"})
_GPU = frozenset({"gpu_uuid"})

FAMILIES: Final[tuple[MetricFamily, ...]] = (
    # Triton (names verified against the Triton 2.51 binary bundled with nvidia-pytriton; the
    # nv_gpu_* ones exist only where Triton sees a GPU).
    MetricFamily("nv_inference_request_success", "counter", Source.TRITON, _MODEL),
    MetricFamily("nv_inference_request_failure", "counter", Source.TRITON, _MODEL | {"reason"}),
    MetricFamily("nv_inference_count", "counter", Source.TRITON, _MODEL),
    MetricFamily("nv_inference_exec_count", "counter", Source.TRITON, _MODEL),
    MetricFamily("nv_inference_request_duration_us", "counter", Source.TRITON, _MODEL),
    MetricFamily("nv_inference_queue_duration_us", "counter", Source.TRITON, _MODEL),
    MetricFamily("nv_inference_compute_infer_duration_us", "counter", Source.TRITON, _MODEL),
    MetricFamily("nv_inference_pending_request_count", "gauge", Source.TRITON, _MODEL),
    # Summaries need --metrics-config=summary_latencies=true (set in every deployment here).
    MetricFamily("nv_inference_request_summary_us", "summary", Source.TRITON, _MODEL),
    MetricFamily("nv_inference_queue_summary_us", "summary", Source.TRITON, _MODEL),
    MetricFamily("nv_gpu_utilization", "gauge", Source.TRITON, _GPU, gpu_only=True),
    MetricFamily("nv_gpu_memory_used_bytes", "gauge", Source.TRITON, _GPU, gpu_only=True),
    MetricFamily("nv_gpu_memory_total_bytes", "gauge", Source.TRITON, _GPU, gpu_only=True),
    # Gateway (prometheus_client): every HTTP request by route template (e.g. /v1/stylize) and
    # status code (e.g. 503), and its end-to-end duration by route.
    MetricFamily(
        "pastiche_gateway_requests_total", "counter", Source.GATEWAY, frozenset({"route", "status"})
    ),
    MetricFamily(
        "pastiche_gateway_request_duration_seconds", "histogram", Source.GATEWAY, frozenset({"route"})
    ),
)


def family_of(series: str) -> MetricFamily | None:
    """The declared family a sample name belongs to, or None when it is not declared."""
    for family in FAMILIES:
        if series in family.series():
            return family
    return None


def series_in_exposition(text: str) -> frozenset[str]:
    """Sample names present in a Prometheus text exposition (the body of a /metrics scrape).

    Names are taken as written, which is how Prometheus stores them (prometheus_client's parser
    would append ``_total`` to Triton's counters).
    """
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            match = _SAMPLE_NAME.match(line)
            if match is None:
                raise ValueError(f"not a Prometheus text exposition line: {line!r}")
            names.add(match.group(0))
    return frozenset(names)


def missing_from_exposition(
    text: str, source: Source, *, include_gpu_only: bool = False
) -> list[str]:
    """Declared sample names of ``source`` that a scrape of it does not contain, sorted.

    Labelled families only show samples once a label combination has been observed, so scrape
    after at least one request of each kind the dashboard plots.
    """
    present = series_in_exposition(text)
    wanted = {
        name
        for family in FAMILIES
        if family.source is source and (include_gpu_only or not family.gpu_only)
        for name in family.series()
    }
    return sorted(wanted - present)
