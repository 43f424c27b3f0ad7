"""Reading the PromQL in Pastiche's monitoring files: which series and labels it selects.

Grafana and prometheus-adapter write PromQL templates (``$model``, ``$__rate_interval``,
``<<.LabelMatchers>>``); the render functions turn them into plain PromQL with neutral values
so that a real parser can check them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import promql_parser

_GRAFANA_RANGE = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
_GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_ADAPTER_PLACEHOLDER = re.compile(r"<<\s*\.(\w+)\s*>>")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<query>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$")


@dataclass(frozen=True)
class Selection:
    """One vector selector of an expression: the series it names and the labels it matches on."""

    series: str
    labels: frozenset[str]


def render_grafana(expr: str) -> str:
    """Grafana query → PromQL: time macros become ``5m``, template variables ``.*``."""
    expr = _GRAFANA_RANGE.sub("5m", expr)
    return _GRAFANA_VARIABLE.sub(".*", expr)


def render_adapter(template: str, series: str) -> str:
    """prometheus-adapter metricsQuery template → PromQL, as the adapter would for one pod."""
    values = {
        "Series": series,
        "LabelMatchers": 'namespace="pastiche",pod=~"pastiche-triton-.*"',
        "GroupBy": "namespace,pod",
    }

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ValueError(f"unknown prometheus-adapter placeholder <<.{name}>>")
        return values[name]

    return _ADAPTER_PLACEHOLDER.sub(substitute, template)


def selections(expr: str) -> list[Selection]:
    """Every vector selector in ``expr`` (plain PromQL); raises ValueError when it doesn't parse."""
    found: list[Selection] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names = [m.value for m in node.matchers.matchers if m.name == "__name__"]
            series = node.name or (names[0] if names else "")
            labels = frozenset(m.name for m in node.matchers.matchers if m.name != "__name__")
            found.append(Selection(series, labels))

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return found


def grafana_variable_query(query: str) -> str | None:
    """The PromQL (or bare metric name) inside a ``label_values(...)`` variable query, if any."""
    match = _LABEL_VALUES.match(query)
    if match is None:
        raise ValueError(f"unsupported Grafana variable query: {query!r}")
    return match.group("query")
