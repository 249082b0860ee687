"""The panels of the committed dashboards, with each query as Prometheus can run it.

Grafana fills in its variables before it sends a query; here every variable becomes what
the dashboard shows by default ("All" for namespace and viable system) and the intervals a
dashboard over the last hour would use. A variable this table does not know fails the
test rather than reach Prometheus as text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from scripts.gen_dashboards import OUTPUT

GRAFANA_VARIABLES = {
    "namespace": ".*",  # "All"
    "vsm_id": ".*",  # "All"
    "__rate_interval": "15s",  # at least four scrapes (every 1 s here)
    "__interval": "1m",  # the bar panels' minimum interval
    "__range": "1h",  # the dashboards' default time range
}
VARIABLE = re.compile(r"\$(\{)?([A-Za-z_]\w*)(?(1)\})")  # $name or ${name}; not $1


@dataclass(frozen=True)
class Query:
    dashboard: str  # uid
    panel: str  # title
    ref: str  # refId
    expr: str  # as Prometheus receives it

    @property
    def metrics(self) -> set[str]:
        """The metric names the query reads."""
        return set(re.findall(r"\b((?:vsm|rabbitmq)_[a-z0-9_]+)\b", self.expr))


def resolve(expr: str, variables: dict[str, str] = GRAFANA_VARIABLES) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in variables:
            raise KeyError(f"unknown Grafana variable ${name} in {expr}")
        return variables[name]

    return VARIABLE.sub(value, expr)


def queries(directory: Path = OUTPUT, **chosen: str) -> list[Query]:
    """Every target of every panel of every dashboard in `directory`, with the variables
    `chosen` (e.g. namespace="vsm") instead of their defaults."""
    variables = {**GRAFANA_VARIABLES, **chosen}
    found = []
    for path in sorted(directory.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                found.append(
                    Query(
                        dashboard["uid"],
                        panel["title"],
                        target["refId"],
                        resolve(target["expr"], variables),
                    )
                )
    return found
