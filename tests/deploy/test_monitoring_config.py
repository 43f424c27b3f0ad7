"""Dashboard, alerts, adapter rule and Prometheus config parse and read only declared metrics."""

from __future__ import annotations

import json
from pathlib import Path

import prometheus_client
import pytest
import yaml

from tests.deploy.rendering import DEPLOY
from deploy.monitoring import metrics, promql
from deploy.monitoring.metrics import SCRAPE_SERIES, TARGET_LABELS, Source

MONITORING = DEPLOY / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "pastiche.json"
ALERTS = sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))
ADAPTER = MONITORING / "prometheus-adapter" / "config.yaml"
# /metrics of the Triton 2.51.0 binary bundled with nvidia-pytriton (CPU, python backend,
# --metrics-config=summary_latencies=true), after 20 requests to one model.
TRITON_SCRAPE = Path(__file__).parent / "data" / "triton-2.51.0-cpu.metrics"


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel."""
    board = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], promql.render_grafana(target["expr"]))
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def alert_queries() -> list[tuple[str, str]]:
    return [
        (rule["alert"], rule["expr"])
        for path in ALERTS
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def adapter_queries() -> list[tuple[str, str]]:
    queries = []
    for rule in yaml.safe_load(ADAPTER.read_text())["rules"]:
        (series,) = {s.series for s in promql.selections(rule["seriesQuery"])}
        queries.append((rule["name"]["as"], rule["seriesQuery"]))
        queries.append((rule["name"]["as"], promql.render_adapter(rule["metricsQuery"], series)))
    return queries


ALL_QUERIES = dashboard_queries() + alert_queries() + adapter_queries()


def assert_declared(where: str, expr: str) -> set[str]:
    """Every selector names a declared series and matches only labels that series carries."""
    try:
        found = promql.selections(expr)
    except ValueError as error:
        pytest.fail(f"{where}: PromQL does not parse: {error}\n{expr}")
    assert found, f"{where}: selects nothing"
    for selection in found:
        if selection.series in SCRAPE_SERIES:
            assert selection.labels <= TARGET_LABELS, f"{where}: {selection}"
            continue
        family = metrics.family_of(selection.series)
        assert family is not None, f"{where}: {selection.series} is not declared in deploy/monitoring/metrics.py"
        allowed = family.sample_labels(selection.series) | TARGET_LABELS
        assert selection.labels <= allowed, f"{where}: {selection.series} has no label {selection.labels - allowed}"
    return {s.series for s in found}


@pytest.mark.parametrize(("where", "expr"), ALL_QUERIES, ids=[w for w, _ in ALL_QUERIES])
def test_query_parses_and_selects_declared_metrics(where, expr):
    assert_declared(where, expr)


def test_every_declared_metric_is_read_somewhere():
    used = set().union(*(assert_declared(w, e) for w, e in ALL_QUERIES))
    for family in metrics.FAMILIES:
        assert used & family.series(), f"{family.name} is declared but no query reads it"


def test_undeclared_metrics_and_labels_are_caught():
    with pytest.raises(AssertionError, match="not declared"):
        assert_declared("probe", "rate(nv_inference_made_up_total[5m])")
    with pytest.raises(AssertionError, match="has no label"):
        assert_declared("probe", 'nv_inference_count{tenant="a"}')
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        assert_declared("probe", "sum(rate(nv_inference_count[5m])")


def test_dashboard_covers_what_operators_ask_for():
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "pastiche-overview"
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for topic in ("images / s", "p95", "queue time", "batch", "failures", "errors"):
        assert topic in titles, f"no panel about {topic}"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    query = promql.grafana_variable_query(variables["model"]["query"]["query"])
    assert query is not None and assert_declared("model variable", query)


def test_alert_rules_are_complete():
    for name, _ in alert_queries():
        assert name.startswith("Pastiche")
    for path in ALERTS:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule["alert"]
                assert rule["labels"]["severity"] in {"warning", "critical"}
                assert rule["annotations"]["summary"]


def test_adapter_rule_maps_pods_and_derives_queue_time_per_request():
    (rule,) = yaml.safe_load(ADAPTER.read_text())["rules"]
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}
    }
    query = promql.render_adapter(rule["metricsQuery"], "nv_inference_queue_duration_us")
    assert {s.series for s in promql.selections(query)} == {
        "nv_inference_queue_duration_us", "nv_inference_request_success"
    }
    with pytest.raises(ValueError, match="Unknown"):
        promql.render_adapter("<<.Unknown>>", "x")


def test_grafana_provisioning_matches_the_compose_mounts():
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    provider = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "dashboards" / "pastiche.yaml").read_text())
    (dashboards,) = provider["providers"]
    assert mounts["../monitoring/grafana/dashboards"] == dashboards["options"]["path"]
    datasource = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    (prometheus,) = datasource["datasources"]
    assert prometheus["type"] == "prometheus" and prometheus["url"] == "http://prometheus:9090"


def test_the_recorded_triton_scrape_exports_every_declared_triton_metric():
    text = TRITON_SCRAPE.read_text()
    assert metrics.missing_from_exposition(text, Source.TRITON) == []
    gpu_only = metrics.missing_from_exposition(text, Source.TRITON, include_gpu_only=True)
    assert gpu_only == sorted(n for f in metrics.FAMILIES if f.gpu_only for n in f.series())


def test_missing_from_exposition_reads_a_prometheus_client_registry():
    registry = prometheus_client.CollectorRegistry()
    requests = prometheus_client.Counter(
        "pastiche_gateway_requests", "requests", ["route", "status"], registry=registry
    )
    duration = prometheus_client.Histogram(
        "pastiche_gateway_request_duration_seconds", "duration", ["route"], registry=registry
    )
    before = prometheus_client.generate_latest(registry).decode()
    assert metrics.missing_from_exposition(before, Source.GATEWAY) == sorted(
        n for f in metrics.FAMILIES if f.source is Source.GATEWAY for n in f.series()
    )
    requests.labels(route="/v1/stylize", status="200").inc()
    duration.labels(route="/v1/stylize").observe(0.2)
    after = prometheus_client.generate_latest(registry).decode()
    assert metrics.missing_from_exposition(after, Source.GATEWAY) == []


def test_grafana_templates_render_to_plain_promql():
    rendered = promql.render_grafana('rate(nv_inference_count{model=~"$model"}[$__rate_interval])')
    assert rendered == 'rate(nv_inference_count{model=~".*"}[5m])'
    assert promql.selections('{__name__="up", job="triton"}') == [promql.Selection("up", frozenset({"job"}))]
    with pytest.raises(ValueError):
        promql.grafana_variable_query("query_result(up)")
