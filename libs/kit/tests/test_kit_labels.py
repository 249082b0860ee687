"""Label values from closed sets: whatever callers send, a label has a bounded number of values."""

from __future__ import annotations

from prometheus_client import generate_latest

from vsm.kit.labels import OTHER, BoundedLabel, RouteLabels
from vsm.kit.telemetry import create_telemetry


def test_a_bounded_label_keeps_its_first_values_and_calls_the_rest_other() -> None:
    label = BoundedLabel(2)
    assert [label(v) for v in ("a", "b", "c", "a", "d")] == ["a", "b", OTHER, "a", OTHER]


def test_routes_past_the_limit_become_the_exchange_s_other() -> None:
    routes = RouteLabels(limit=3)
    labels = {routes("vsm.s1.commands", f"worker.w1.made_up_{i}") for i in range(1_000)}
    assert len(labels) == 4
    assert "vsm.s1.commands.other" in labels
    fresh = RouteLabels(limit=3)
    assert fresh("", "amq.rabbitmq.reply-to.g1h2AA.x9") == "default.amq.rabbitmq.reply-to"


def test_a_narrower_maps_routing_keys_to_their_closed_form() -> None:
    routes = RouteLabels()
    routes.narrowers.append(lambda exchange, key: key.rsplit(".", 1)[0] + ".other")
    assert routes("x", "a.b.made_up") == "x.a.b.other"


def test_performance_reports_of_every_agent_share_one_label() -> None:
    routes = RouteLabels(limit=3)
    labels = {routes("vsm.control", f"s1.performance.worker-{i:012x}") for i in range(1_000)}
    assert labels == {"vsm.control.s1.performance.agent"}
    audits = {routes("vsm.s1.commands", f"audit.worker-{i:012x}.audit") for i in range(1_000)}
    assert audits == {"vsm.s1.commands.audit.agent.audit"}


def test_every_service_exports_its_process_metrics() -> None:
    text = generate_latest(create_telemetry("control").registry).decode()
    rss = next(line for line in text.splitlines() if line.startswith("process_resident_memory"))
    assert float(rss.split()[1]) > 0
    assert "process_cpu_seconds_total" in text
    assert "process_open_fds" in text
    assert "python_info{" in text
