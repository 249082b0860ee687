"""Grafana dashboards as code: `python scripts/gen_dashboards.py` writes them to the chart.

The chart turns each JSON file in deploy/helm/vsm/dashboards/ into a ConfigMap for the
Grafana sidecar, and docker-compose provisions the same files. A panel is data (title,
PromQL, kind); this module lays panels out and renders Grafana's JSON model, so a dashboard
is reviewed as a short list of queries. A drift test fails when the committed JSON differs
from this output, and tests/observability runs every panel's query on a live Prometheus.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "deploy" / "helm" / "vsm" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24
NS = 'namespace=~"$namespace"'
VSM_ID = 'vsm_id=~"$vsm_id"'
RATE = "[$__rate_interval]"
# The kit labels a received message by "<exchange>.<routing key>": a command arrives on
# vsm.s1.commands with key <agent_type>.<agent_id>.<command>, and an S3* audit on the same
# exchange with key audit.<agent_id>.audit (both through the agent's partition queue).
COMMANDS = r'handler=~".*vsm\\.s1\\.commands\\..+"'
NOT_AUDITS = r'handler!~".*vsm\\.s1\\.commands\\.audit\\..+"'
AUDITS = r'handler=~".*vsm\\.s1\\.commands\\.audit\\..+\\.audit"'
OPERATIONS = 'app_name="operations"'
SERVICE = 'service="operations"'  # the kit's own counters label by service

Thresholds = tuple[tuple[str, float | None], ...]
HEALTHY_HIGH: Thresholds = (("red", None), ("orange", 0.5), ("green", 0.7))
HEALTHY_LOW: Thresholds = (("green", None), ("orange", 0.3), ("red", 0.7))
NONE_IS_GOOD: Thresholds = (("green", None), ("red", 1))


def m(metric: str, *matchers: str) -> str:
    """`metric` with the dashboard's namespace filter and `matchers`."""
    return f"{metric}{{{', '.join((NS, *matchers))}}}"


def rate(metric: str, *matchers: str) -> str:
    return f"rate({m(metric, *matchers)}{RATE})"


def per_interval(metric: str, *matchers: str) -> str:
    """Events per bar of a timeline (the panel's interval is at least a minute)."""
    return f"increase({m(metric, *matchers)}[$__interval])"


def over_range(metric: str, *matchers: str) -> str:
    return f"increase({m(metric, *matchers)}[$__range])"


def relabel(expr: str, label: str, regex: str, source: str) -> str:
    """`label_replace`: the first group of `regex` (PromQL-escaped) over `source` as `label`."""
    return f'label_replace({expr}, "{label}", "$1", "{source}", "{regex}")'


def last_segment(expr: str, label: str, source: str) -> str:
    """Copy the last dot-separated segment of `source` into `label` (e.g. a command's name)."""
    return relabel(expr, label, r".*\\.([^.]+)", source)


def by_command(expr: str) -> str:
    """Label a per-handler series of an agent command with `agent_type` and `command`."""
    typed = relabel(expr, "agent_type", r".*vsm\\.s1\\.commands\\.([^.]+)\\..+", "handler")
    return last_segment(typed, "command", "handler")


def sum_by(labels: str, expr: str) -> str:
    return f"sum by ({labels}) ({expr})" if labels else f"sum({expr})"


def quantile(q: float, by: str, series: str) -> str:
    return f"histogram_quantile({q}, sum by ({by}) ({series}))"


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    targets: tuple[Target, ...]
    description: str = ""
    kind: str = "timeseries"  # timeseries, bars (events per interval), gauge, stat, bargauge
    unit: str = "short"
    width: int = 12
    height: int = 8
    low: float | None = None
    high: float | None = None
    thresholds: Thresholds | None = None


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str  # label_values(...): the values to pick from ("All" matches any)


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...]


def t(expr: str, legend: str = "", *, instant: bool = False) -> Target:
    return Target(expr, legend, instant)


def datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "options": [],
    }


def query_variable(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": variable.query, "refId": variable.name},
        "definition": variable.query,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {},
        "refresh": 2,
        "hide": 0,
        "options": [],
        "sort": 1,
    }


def field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.low is not None:
        defaults["min"] = panel.low
    if panel.high is not None:
        defaults["max"] = panel.high
    if panel.thresholds:
        steps = [{"color": color, "value": value} for color, value in panel.thresholds]
        defaults["thresholds"] = {"mode": "absolute", "steps": steps}
        defaults["color"] = {"mode": "thresholds"}
    if panel.kind == "bars":
        defaults["custom"] = {
            "drawStyle": "bars",
            "fillOpacity": 80,
            "stacking": {"mode": "normal"},
        }
    return {"defaults": defaults, "overrides": []}


def options(panel: Panel) -> dict[str, Any]:
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if panel.kind == "gauge":
        return {"reduceOptions": reduce, "showThresholdMarkers": True, "showThresholdLabels": False}
    if panel.kind == "stat":
        return {"reduceOptions": reduce, "colorMode": "value", "graphMode": "area"}
    if panel.kind == "bargauge":
        return {"reduceOptions": reduce, "displayMode": "gradient", "orientation": "horizontal"}
    return {
        "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
        "tooltip": {"mode": "multi"},
    }


def render_panel(panel: Panel, number: int, x: int, y: int) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "id": number,
        "type": "timeseries" if panel.kind == "bars" else panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": field_config(panel),
        "options": options(panel),
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": DATASOURCE,
                "expr": target.expr,
                "legendFormat": target.legend,
                **({"instant": True, "range": False} if target.instant else {}),
            }
            for index, target in enumerate(panel.targets)
        ],
    }
    if panel.kind == "bars":
        rendered["interval"] = "1m"  # an increase over less than a few scrapes is noise
    return rendered


def layout(panels: tuple[Panel, ...]) -> list[dict[str, Any]]:
    """Left to right, top to bottom; a panel that does not fit starts the next row."""
    rendered, x, y, row_height = [], 0, 0, 0
    for number, panel in enumerate(panels, start=1):
        if x + panel.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        rendered.append(render_panel(panel, number, x, y))
        x, row_height = x + panel.width, max(row_height, panel.height)
    return rendered


def render(dashboard: Dashboard) -> dict[str, Any]:
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "tags": ["vsm"],
        "description": dashboard.description,
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "",
        "annotations": {"list": []},
        "links": [
            {"title": "vsm", "type": "dashboards", "tags": ["vsm"], "asDropdown": True},
        ],
        "templating": {
            "list": [datasource_variable(), *(query_variable(v) for v in dashboard.variables)]
        },
        "panels": layout(dashboard.panels),
    }


NAMESPACE = Variable(
    "namespace", "Namespace", "label_values(vsm_amqp_published_messages_total, namespace)"
)
SYSTEMS = Variable("vsm_id", "Viable system", "label_values(vsm_viability, vsm_id)")
BROKER_NAMESPACE = Variable(
    "namespace", "Namespace", "label_values(rabbitmq_identity_info, namespace)"
)


def per_system(metric: str) -> str:
    """A gauge of S5's per viable system (one queen, or replicas that agree)."""
    return f"max by (vsm_id) ({m(metric, VSM_ID)})"


def overview() -> Dashboard:
    viability = per_system("vsm_viability")
    heartbeats = rate("vsm_amqp_published_messages_total", r'destination=~".*vsm\\.health\\."')
    signals = "vsm_algedonic_signals_total"
    return Dashboard(
        uid="vsm-overview",
        title="vsm / overview",
        description="Is each viable system viable? Viability, pain and pleasure, and what S5 did.",
        variables=(NAMESPACE, SYSTEMS),
        panels=(
            Panel(
                "Viability",
                (t(viability, "{{vsm_id}}"),),
                "S5's score over the measured terms (0..1): S1 performance, algedonic balance, "
                "oscillation, headroom, readiness.",
                kind="gauge",
                unit="percentunit",
                width=8,
                low=0,
                high=1,
                thresholds=HEALTHY_HIGH,
            ),
            Panel(
                "Viability coverage",
                (t(per_system("vsm_viability_coverage"), "{{vsm_id}}"),),
                "Share of the viability weight actually measured; low coverage means the score "
                "rests on few inputs.",
                kind="stat",
                unit="percentunit",
                width=8,
                low=0,
                high=1,
            ),
            Panel(
                "Services sending heartbeats",
                (t(f"count(sum by (app_name) ({heartbeats}) > 0)", "services"),),
                "Services that published a heartbeat lately (7 when all are up).",
                kind="stat",
                width=8,
                thresholds=(("red", None), ("orange", 1), ("green", 7)),
            ),
            Panel(
                "Viability over time",
                (t(viability, "{{vsm_id}}"),),
                unit="percentunit",
                low=0,
                high=1,
                thresholds=HEALTHY_HIGH,
            ),
            Panel(
                "Pain and pleasure level",
                (
                    t(per_system("vsm_pain_level"), "pain {{vsm_id}}"),
                    t(per_system("vsm_pleasure_level"), "pleasure {{vsm_id}}"),
                ),
                "Decayed levels (0..1); pain above the threshold (default 0.7) opens an "
                "intervention, below 0.3 resolves it.",
                unit="percentunit",
                low=0,
                high=1,
                thresholds=HEALTHY_LOW,
            ),
            Panel(
                "Algedonic signals per second, by kind",
                (t(sum_by("vsm_id, kind", rate(signals, VSM_ID)), "{{kind}} {{vsm_id}}"),),
                "Pain and pleasure from S1 agents, sensors, S4 and people, straight to S5.",
                unit="ops",
            ),
            Panel(
                "Algedonic signals by reason",
                (
                    t(
                        sum_by("kind, reason", over_range(signals, VSM_ID)),
                        "{{kind}} {{reason}}",
                        instant=True,
                    ),
                ),
                "Over the dashboard's range.",
                kind="bargauge",
            ),
            Panel(
                "Interventions timeline",
                (
                    t(
                        sum_by("vsm_id, trigger", per_interval("vsm_interventions_total", VSM_ID)),
                        "opened {{vsm_id}} ({{trigger}})",
                    ),
                    t(
                        sum_by("vsm_id", per_interval("vsm_interventions_resolved_total", VSM_ID)),
                        "resolved {{vsm_id}}",
                    ),
                    t(
                        sum_by("vsm_id, target", per_interval("vsm_escalations_total", VSM_ID)),
                        "escalated {{vsm_id}} to {{target}}",
                    ),
                    t(
                        sum_by("vsm_id", per_interval("vsm_alert_acknowledgements_total", VSM_ID)),
                        "acknowledged {{vsm_id}}",
                    ),
                ),
                "Episodes S5 opened, resolved, escalated (to the parent system or operators) and "
                "operators acknowledged, per interval.",
                kind="bars",
                width=24,
            ),
            Panel(
                "Policy changes and refusals",
                (
                    t(
                        sum_by("policy_type, source", per_interval("vsm_policy_changes_total")),
                        "{{policy_type}} by {{source}}",
                    ),
                    t(
                        sum_by("policy_type, code", per_interval("vsm_policy_rejections_total")),
                        "refused {{policy_type}}: {{code}}",
                    ),
                ),
                "Policy versions stored, by who proposed them, and candidates refused.",
                kind="bars",
            ),
            Panel(
                "Policy syntheses, by LLM outcome",
                (
                    t(
                        sum_by("llm_outcome", over_range("vsm_policy_synthesis_total")),
                        "{{llm_outcome}}",
                        instant=True,
                    ),
                ),
                "Over the dashboard's range; rules answer when the LLM is not configured or fails.",
                kind="bargauge",
            ),
        ),
    )


def operations() -> Dashboard:
    commands = (OPERATIONS, COMMANDS, NOT_AUDITS)
    processed = "vsm_amqp_received_processed_messages_total"
    buckets = rate("vsm_amqp_received_processed_messages_duration_seconds_bucket", *commands)
    registry = r'destination=~".*vsm\\.s1\\.registry\\.agent\\..+"'
    events = over_range("vsm_amqp_published_messages_total", OPERATIONS, registry)
    events = relabel(events, "event", r".*\\.agent\\.([^.]+)\\..+", "destination")
    events = last_segment(events, "agent_type", "destination")
    requests = rate(processed, OPERATIONS, r'handler=~".*vsm\\.requests\\.operations\\..+"')
    in_flight = m("vsm_amqp_received_messages_in_process", *commands)
    return Dashboard(
        uid="vsm-s1-operations",
        title="vsm / S1 operations",
        description="The agents that do the work: how many, what they are asked, how fast, "
        "what fails.",
        variables=(NAMESPACE, SYSTEMS),
        panels=(
            Panel(
                "Agents by type and state",
                (
                    t(
                        sum_by("agent_type, state", m("vsm_agents", VSM_ID)),
                        "{{agent_type}} {{state}}",
                    ),
                ),
                kind="bargauge",
            ),
            Panel(
                "Agent lifecycle events",
                (
                    t(
                        sum_by("event, agent_type", events),
                        "{{event}} {{agent_type}}",
                        instant=True,
                    ),
                ),
                "Registry events over the dashboard's range: spawned, terminated, crashed.",
                kind="bargauge",
            ),
            Panel(
                "Commands per second, by agent type and command",
                (
                    t(
                        sum_by("agent_type, command", by_command(rate(processed, *commands))),
                        "{{agent_type}} {{command}}",
                    ),
                ),
                "Commands the agents handled (from vsm.s1.commands).",
                unit="ops",
            ),
            Panel(
                "Command duration",
                tuple(
                    t(quantile(q, "le", buckets), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)
                ),
                "From an agent taking a command to its result being published.",
                unit="s",
            ),
            Panel(
                "Command duration p95, by command",
                (
                    t(
                        quantile(0.95, "command, le", last_segment(buckets, "command", "handler")),
                        "{{command}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Commands in flight, by agent type",
                (t(sum_by("agent_type", by_command(in_flight)), "{{agent_type}}"),),
            ),
            Panel(
                "Command results by status",
                (
                    t(
                        sum_by("agent_type, command, status", rate("vsm_commands_total", VSM_ID)),
                        "{{agent_type}} {{command}} {{status}}",
                    ),
                ),
                "ok and error results (capability_not_supported, timeouts, LLM errors).",
                unit="ops",
            ),
            Panel(
                "Rejected input and failures in operations",
                (
                    t(
                        sum_by("reason", rate("vsm_messages_dead_lettered_total", SERVICE)),
                        "dead-lettered: {{reason}}",
                    ),
                    t(
                        sum_by("error", rate("vsm_handler_failures_total", SERVICE)),
                        "failed: {{error}}",
                    ),
                ),
                "Bad input parked on a DLQ with its reason, and unexpected handler errors "
                "(redelivered up to the delivery limit).",
                unit="ops",
            ),
            Panel(
                "Registry requests per second, by operation",
                (
                    t(
                        sum_by("operation", last_segment(requests, "operation", "handler")),
                        "{{operation}}",
                    ),
                ),
                "spawn, list, get, terminate and types, from the gateways.",
                unit="ops",
            ),
            Panel(
                "S3* audits answered per second",
                (t(sum_by("", rate(processed, OPERATIONS, AUDITS)), "audits"),),
                "Audits sent straight to an agent's queue, bypassing S2.",
                unit="ops",
            ),
            Panel(
                "Results exchanges of terminated agents still to delete",
                (
                    t(sum_by("", m("vsm_agent_cleanups_pending")), "pending"),
                    t(
                        sum_by("", per_interval("vsm_agent_cleanup_failures_total")),
                        "failed deletions (tried again)",
                    ),
                ),
                "Deleted in the background after a termination is answered: pending returns "
                "to 0 within seconds. Pending that stays up, with failed deletions, means the "
                "broker refuses or lost them (logged as cleanup_failed).",
            ),
        ),
    )


def coordination() -> Dashboard:
    performance = r'destination=~".*vsm\\.control\\.s1\\.performance\\..+"'
    processed = "vsm_amqp_received_processed_messages_total"
    return Dashboard(
        uid="vsm-s2-s3",
        title="vsm / S2 coordination and S3 resources",
        description="S2 damps oscillation and schedules S1 work fairly; S3 allocates and audits.",
        variables=(NAMESPACE, SYSTEMS),
        panels=(
            Panel(
                "Oscillation index",
                (t(per_system("vsm_oscillation_index"), "{{vsm_id}}"),),
                "How much S1 units flap (0 calm .. 1 oscillating); S2 damps it.",
                kind="gauge",
                unit="percentunit",
                width=8,
                low=0,
                high=1,
                thresholds=HEALTHY_LOW,
            ),
            Panel(
                "Meta-systems",
                (t(per_system("vsm_meta_systems"), "{{vsm_id}}"),),
                "Child viable systems of each system (recursion).",
                kind="stat",
                width=8,
            ),
            Panel(
                "Allocation ratio (allocated / budget)",
                (
                    t(
                        f"max by (vsm_id, resource) ({m('vsm_allocation_ratio', VSM_ID)})",
                        "{{vsm_id}} {{resource}}",
                    ),
                ),
                kind="bargauge",
                unit="percentunit",
                width=8,
                low=0,
                high=1,
                thresholds=(("green", None), ("orange", 0.8), ("red", 0.95)),
            ),
            Panel(
                "Coordination events per second, by kind",
                (
                    t(
                        sum_by("vsm_id, kind", rate("vsm_coordination_events_total", VSM_ID)),
                        "{{vsm_id}} {{kind}}",
                    ),
                ),
                "Oscillation detected, damping applied, work rescheduled.",
                unit="ops",
            ),
            Panel(
                "Fair-share lanes: queued and dispatched",
                (
                    t(sum_by("lane", m("vsm_lane_queued")), "queued {{lane}}"),
                    t(
                        sum_by("lane", rate("vsm_lane_dispatched_total")),
                        "dispatched/s {{lane}}",
                    ),
                ),
                "S2's weighted lanes with aging: work waiting and work sent on to S1.",
            ),
            Panel(
                "Allocation changes, by reason",
                (
                    t(
                        sum_by(
                            "vsm_id, reason", per_interval("vsm_allocation_changes_total", VSM_ID)
                        ),
                        "{{vsm_id}} {{reason}}",
                    ),
                ),
                "Grants, policy-driven changes and emergency reallocations by S3.",
                kind="bars",
            ),
            Panel(
                "Audits, by outcome",
                (
                    t(
                        sum_by("vsm_id, outcome", per_interval("vsm_audits_total", VSM_ID)),
                        "{{vsm_id}} {{outcome}}",
                    ),
                ),
                "S3* audits of S1 agents, scheduled and on demand.",
                kind="bars",
            ),
            Panel(
                "S1 performance reports to S3 per second",
                (
                    t(
                        sum_by(
                            "", rate("vsm_amqp_published_messages_total", OPERATIONS, performance)
                        ),
                        "reports",
                    ),
                ),
                "Beer's indices of every agent: the measured input of S3 and of viability.",
                unit="ops",
            ),
            Panel(
                "S3* audits answered by S1 agents per second",
                (t(sum_by("", rate(processed, OPERATIONS, AUDITS)), "audits"),),
                unit="ops",
            ),
            *llm_cost(),
        ),
    )


def llm_cost() -> tuple[Panel, ...]:
    """What the LLM costs: the tokens of every call (the API's usage) and their price."""
    duration = "vsm_llm_call_duration_seconds_bucket"
    spend = sum_by("vsm_id, agent_type, model", rate("vsm_llm_cost_usd_total", VSM_ID))
    return (
        Panel(
            "LLM spend, USD per hour, by system, agent type and model",
            (
                t(
                    f"3600 * {spend}",
                    "{{vsm_id}} {{agent_type}} {{model}}",
                ),
            ),
            "Tokens priced from LLM_PRICES (cache reads and writes included), at the current "
            "rate; `other`: a model not in the price table, or a system beyond the label bound.",
            unit="currencyUSD",
        ),
        Panel(
            "LLM tokens per second, by system, agent type and direction",
            (
                t(
                    sum_by("vsm_id, agent_type, direction", rate("vsm_llm_tokens_total", VSM_ID)),
                    "{{vsm_id}} {{agent_type}} {{direction}}",
                ),
            ),
            "From each call's usage: input, output, and prompt-cache writes and reads.",
        ),
        Panel(
            "LLM spend over the time range, by system",
            (
                t(
                    sum_by("vsm_id", over_range("vsm_llm_cost_usd_total", VSM_ID)),
                    "{{vsm_id}}",
                    instant=True,
                ),
            ),
            kind="stat",
            unit="currencyUSD",
        ),
        Panel(
            "LLM budget headroom today, USD, by system",
            (t(sum_by("vsm_id", m("vsm_llm_budget_headroom_usd", VSM_ID)), "{{vsm_id}}"),),
            "What each viable system may still spend on LLM calls this UTC day: its own daily "
            "cap (budget less children's carves) less the day's spend; only systems with a USD "
            "budget. At 80% spent S3 feels pain `budget`; at the cap calls fail unsent.",
            unit="currencyUSD",
        ),
        Panel(
            "LLM call duration (p95), by agent type",
            (
                t(
                    quantile(0.95, "le, agent_type", rate(duration, 'outcome="ok"')),
                    "{{agent_type}}",
                ),
            ),
            "One Messages API call, answered; failed calls are counted with outcome `error`.",
            unit="s",
        ),
    )


def rabbitmq() -> Dashboard:
    def total(metric: str) -> str:
        return sum_by("", m(metric))

    def per_second(metric: str) -> str:
        return sum_by("", rate(metric))

    def per_node(metric: str) -> str:
        return sum_by("instance", m(metric))

    def stat(title: str, metric: str) -> Panel:
        return Panel(title, (t(total(metric), title.lower()),), kind="stat", width=6, height=4)

    return Dashboard(
        uid="vsm-rabbitmq",
        title="vsm / RabbitMQ",
        description="The broker, from its own Prometheus plugin (rabbitmq_prometheus, port 15692).",
        variables=(BROKER_NAMESPACE,),
        panels=(
            stat("Connections", "rabbitmq_connections"),
            stat("Channels", "rabbitmq_channels"),
            stat("Queues", "rabbitmq_queues"),
            stat("Consumers", "rabbitmq_consumers"),
            Panel(
                "Queue depth: messages ready and unacked",
                (
                    t(total("rabbitmq_queue_messages_ready"), "ready"),
                    t(total("rabbitmq_queue_messages_unacked"), "unacked"),
                ),
                "All queues together; ready waits for a consumer, unacked is being processed.",
            ),
            Panel(
                "Messages per second: published, routed, delivered, acknowledged",
                (
                    t(per_second("rabbitmq_global_messages_received_total"), "published"),
                    t(per_second("rabbitmq_global_messages_routed_total"), "routed"),
                    t(per_second("rabbitmq_global_messages_delivered_total"), "delivered"),
                    t(per_second("rabbitmq_global_messages_acknowledged_total"), "acknowledged"),
                    t(per_second("rabbitmq_global_messages_confirmed_total"), "confirmed"),
                ),
                unit="ops",
            ),
            Panel(
                "Unroutable, redelivered and dead-lettered per second",
                (
                    t(
                        per_second("rabbitmq_global_messages_unroutable_returned_total"),
                        "unroutable, returned",
                    ),
                    t(
                        per_second("rabbitmq_global_messages_unroutable_dropped_total"),
                        "unroutable, dropped",
                    ),
                    t(per_second("rabbitmq_global_messages_redelivered_total"), "redelivered"),
                    t(
                        per_second("rabbitmq_global_messages_dead_lettered_delivery_limit_total"),
                        "dead-lettered: delivery limit",
                    ),
                    t(
                        per_second("rabbitmq_global_messages_dead_lettered_expired_total"),
                        "dead-lettered: expired",
                    ),
                ),
                "Returned: a mandatory publish found no queue (the publisher raises). "
                "Delivery limit: a message its handler failed on 5 times.",
                unit="ops",
            ),
            Panel(
                "Deliveries per second, by queue type",
                (
                    t(
                        sum_by("queue_type", rate("rabbitmq_global_messages_delivered_total")),
                        "{{queue_type}}",
                    ),
                ),
                "Quorum queues carry the work, streams the event logs, classic ones the rest.",
                unit="ops",
            ),
            Panel(
                "Connections opened and closed per second",
                (
                    t(per_second("rabbitmq_connections_opened_total"), "opened"),
                    t(per_second("rabbitmq_connections_closed_total"), "closed"),
                ),
                "Churn: each service keeps its connections, so steady churn is a problem.",
                unit="ops",
            ),
            Panel(
                "Memory used and its high watermark",
                (
                    t(per_node("rabbitmq_process_resident_memory_bytes"), "used {{instance}}"),
                    t(per_node("rabbitmq_resident_memory_limit_bytes"), "watermark {{instance}}"),
                ),
                "A node at its watermark blocks publishers.",
                unit="bytes",
            ),
            Panel(
                "Free disk and its limit",
                (
                    t(per_node("rabbitmq_disk_space_available_bytes"), "free {{instance}}"),
                    t(per_node("rabbitmq_disk_space_available_limit_bytes"), "limit {{instance}}"),
                ),
                "A node below its limit blocks publishers.",
                unit="bytes",
            ),
            Panel(
                "Resource alarms",
                (
                    t(total("rabbitmq_alarms_memory_used_watermark"), "memory"),
                    t(total("rabbitmq_alarms_free_disk_space_watermark"), "disk"),
                    t(total("rabbitmq_alarms_file_descriptor_limit"), "file descriptors"),
                ),
                "Nodes in alarm; any alarm blocks publishers.",
                kind="stat",
                thresholds=NONE_IS_GOOD,
            ),
            Panel(
                "Quorum queue commit latency",
                (
                    t(
                        f"max by (instance) ({m('rabbitmq_raft_entry_commit_latency_seconds')})",
                        "{{instance}}",
                    ),
                ),
                "Raft: time to commit an entry on a majority; publisher confirms wait for it.",
                unit="s",
            ),
        ),
    )


def messaging() -> Dashboard:
    received = "vsm_amqp_received_processed_messages"
    published = "vsm_amqp_published_messages"
    return Dashboard(
        uid="vsm-messaging",
        title="vsm / messaging",
        description="The bus of a vsm deployment: what each service receives, publishes, "
        "dead-letters and fails on.",
        variables=(NAMESPACE,),
        panels=(
            Panel(
                "Messages received per second, by service",
                (
                    t(
                        sum_by("app_name", rate("vsm_amqp_received_messages_total")),
                        "{{app_name}}",
                    ),
                ),
                "Every message a service's consumers took from the broker.",
                unit="ops",
            ),
            Panel(
                "Messages published per second, by service and status",
                (
                    t(
                        sum_by("app_name, status", rate(published + "_total")),
                        "{{app_name}} {{status}}",
                    ),
                ),
                "Publishes with confirms; status other than success means the broker refused or "
                "could not route.",
                unit="ops",
            ),
            Panel(
                "Handler outcome per second, by service and status",
                (
                    t(
                        sum_by("app_name, status", rate(received + "_total")),
                        "{{app_name}} {{status}}",
                    ),
                ),
                "acked, nacked, rejected or errored deliveries.",
                unit="ops",
            ),
            Panel(
                "Handler duration p95, by service",
                (
                    t(
                        quantile(0.95, "app_name, le", rate(received + "_duration_seconds_bucket")),
                        "{{app_name}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Dead-lettered messages, by queue and reason",
                (
                    t(
                        sum_by("queue, reason", over_range("vsm_messages_dead_lettered_total")),
                        "{{queue}} {{reason}}",
                    ),
                ),
                "Bad input sent to <queue>.dlq with its reason (malformed_json, invalid_schema, "
                "unknown_type, ...), over the dashboard's range.",
            ),
            Panel(
                "Unexpected handler failures per second, by service, queue and error",
                (
                    t(
                        sum_by("service, queue, error", rate("vsm_handler_failures_total")),
                        "{{service}} {{queue}} {{error}}",
                    ),
                ),
                "Logged and redelivered; after 5 deliveries the broker dead-letters the message.",
                unit="ops",
            ),
            Panel(
                "Messages in process, by service",
                (
                    t(
                        sum_by("app_name", m("vsm_amqp_received_messages_in_process")),
                        "{{app_name}}",
                    ),
                ),
            ),
            Panel(
                "Publish and handler exceptions per second",
                (
                    t(
                        sum_by("app_name, exception_type", rate(published + "_exceptions_total")),
                        "publish {{app_name}} {{exception_type}}",
                    ),
                    t(
                        sum_by("app_name, exception_type", rate(received + "_exceptions_total")),
                        "handle {{app_name}} {{exception_type}}",
                    ),
                ),
                unit="ops",
            ),
        ),
    )


DASHBOARDS = (overview, operations, coordination, rabbitmq, messaging)


def dashboards() -> dict[Path, str]:
    """Every dashboard's JSON by its path under the repository root."""
    generated = {}
    for build in DASHBOARDS:
        dashboard = build()
        generated[OUTPUT / f"{dashboard.uid}.json"] = json.dumps(render(dashboard), indent=2) + "\n"
    return generated


def main() -> int:
    expected = dashboards()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for stale in sorted(set(OUTPUT.glob("*.json")) - set(expected)):
        stale.unlink()
        print(f"removed {stale.relative_to(ROOT)}")
    for path, text in expected.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
