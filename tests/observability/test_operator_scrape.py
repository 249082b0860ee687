"""Under prometheus-operator: the chart's ServiceMonitors and PrometheusRule over a running
system.

A private Prometheus scrapes the seven services and the broker with the relabelling the
operator generates for the rendered ServiceMonitors (tests/observability/operator.py), so
every series carries namespace, service, pod, container, job and endpoint as it would in a
cluster. While the system is under load, every dashboard query runs with the namespace
variable set to the release's namespace, the alert rules are evaluated, the `helm test`
hook's script runs against the services, and docs/metrics.md is compared with what the
services really export.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scripts.localrun import LocalSystem
from tests.deploy.chart import objects, render
from tests.observability.broker import MonitoredRabbitMQ
from tests.observability.catalogue import documented
from tests.observability.load import Agents, episode, steady
from tests.observability.operator import OperatorPrometheus, scrape_configs
from tests.observability.panels import Query, queries
from tests.observability.prometheus import PrivatePrometheus
from tests.observability.test_prometheus import QUIET, has_data
from tests.support.probe import open_probe
from tests.support.tokens import OPERATE_TOKEN, gateway_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

NAMESPACE = "vsm"
WITHOUT_HONOR = "vsm-without-honor-labels"
"""The namespace label of a second scrape of the components without honorLabels."""
VALUES = {
    "monitoring": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "secrets": {"generateMcpAuthToken": False},
}
DEADLINE_S = 90
COMPONENTS = ("queen", "intelligence", "control", "coordinator", "operations")
COMPONENTS += ("telegram-gateway", "mcp-gateway")
SELECTOR = re.compile(r"\b((?:vsm|rabbitmq)_[a-z0-9_]+|up)(\{[^}]*\})")


@pytest.fixture(scope="module")
def chart() -> list[dict[str, Any]]:
    return render(VALUES)


@pytest.fixture(scope="module")
def operator_prometheus(
    chart: list[dict[str, Any]],
    broker: MonitoredRabbitMQ,
    monitored_system: LocalSystem,
    prometheus: PrivatePrometheus,
) -> Iterator[OperatorPrometheus]:
    """Scraping where the conftest's Prometheus scrapes (each service's unauthenticated
    metrics), relabelled as the operator would."""

    def address(service: dict[str, Any], port: str) -> str:
        component = service["metadata"]["labels"]["app.kubernetes.io/component"]
        if (component, port) == ("rabbitmq", "prometheus"):
            return broker.metrics_address
        if port == "metrics" and component in prometheus.jobs:
            return prometheus.jobs[component][0]
        if port == "http" and component in monitored_system.ports:
            return f"127.0.0.1:{monitored_system.ports[component]}"
        return "127.0.0.1:9"  # nothing listens: a target the relabelling keeps would be down

    services = list(objects(chart, "Service").values())
    monitors = objects(chart, "ServiceMonitor")
    scrape = [job for m in monitors.values() for job in scrape_configs(m, services, address)]
    control = copy.deepcopy(scrape[0])  # the components' job, as it was before honorLabels
    control["job_name"] += "/without-honor-labels"
    control["honor_labels"] = False
    control["relabel_configs"].append({"target_label": "namespace", "replacement": WITHOUT_HONOR})
    groups = objects(chart, "PrometheusRule")["vsm"]["spec"]["groups"]
    with OperatorPrometheus([*scrape, control], groups) as server:
        server.wait_targets(len(COMPONENTS) * 2 + 1)  # the components twice, the broker
        yield server


@pytest.fixture(scope="module")
async def under_load(
    broker: MonitoredRabbitMQ, monitored_system: LocalSystem
) -> AsyncIterator[Agents]:
    """The rare events once, then steady commands and signals for the rest of the module."""
    namespace = monitored_system.env["VSM_NAMESPACE"]
    async with (
        gateway_client(monitored_system, timeout=30) as gateway,
        open_probe(broker.url, namespace) as probe,
    ):
        agents = await episode(gateway, probe)
        load = asyncio.create_task(steady(gateway, agents))
        try:
            yield agents
        finally:
            load.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await load


def poll(server: PrivatePrometheus, wanted: list[Query]) -> list[Query]:
    pending = list(wanted)
    deadline = time.monotonic() + DEADLINE_S
    while pending and time.monotonic() < deadline:
        pending = [q for q in pending if not has_data(server, q)]
        time.sleep(1)
    return pending


def test_targets_carry_the_labels_the_operator_gives(
    operator_prometheus: OperatorPrometheus,
) -> None:
    ups = operator_prometheus.query(f'up{{namespace="{NAMESPACE}"}}')
    by_service = {s["metric"]["service"]: s["metric"] for s in ups}
    components = {f"vsm-{n}" for n in COMPONENTS}
    assert set(by_service) == components | {"vsm-rabbitmq"}
    for service in components:
        labels = by_service[service]
        assert labels["job"] == service
        assert labels["endpoint"] == "metrics"  # the port without a token, never `http`
        assert labels["pod"].startswith(f"{service}-")
        assert labels["container"] == service.removeprefix("vsm-")
    assert by_service["vsm-rabbitmq"]["endpoint"] == "prometheus"


async def test_every_dashboard_query_has_data_in_the_releases_namespace(
    operator_prometheus: OperatorPrometheus, under_load: Agents
) -> None:
    everything = queries(namespace=NAMESPACE)
    live = [q for q in everything if (q.dashboard, q.panel, q.ref) not in QUIET]
    rejected = [q for q in live if q.panel == "Rejected input and failures in operations"]
    assert rejected, "the S1 dashboard's rejected-input panel is missing"
    assert all('namespace=~"vsm"' in q.expr for q in live if "namespace" in q.expr)
    without_data = await asyncio.to_thread(poll, operator_prometheus, live)
    assert not without_data, "panels without data under the operator's relabelling:\n" + "\n".join(
        f"  {q.dashboard} / {q.panel} [{q.ref}]: {q.expr}" for q in without_data
    )
    # Without honorLabels the kit's counters lose their `service` to exported_service.
    renamed = operator_prometheus.query(
        f'vsm_messages_dead_lettered_total{{namespace="{WITHOUT_HONOR}", '
        'exported_service="operations"}'
    )
    assert renamed, "the control scrape should show the renamed label"
    assert not operator_prometheus.query(
        f'vsm_messages_dead_lettered_total{{namespace="{WITHOUT_HONOR}", service="operations"}}'
    )


def test_every_alert_rule_evaluates_and_selects_real_series(
    operator_prometheus: OperatorPrometheus, under_load: Agents
) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        pending = [
            f"{rule['name']}: {selector} selects nothing"
            for rule in alert_rules(operator_prometheus)
            for selector in selectors(rule["query"])
            if not operator_prometheus.query(f"count({selector})")
        ]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not pending, "\n".join(pending)
    rules = alert_rules(operator_prometheus)
    assert {r["name"] for r in rules} >= {"VsmNotViable", "VsmServiceDown", "VsmEscalationOpen"}
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    # The episode's malformed messages were dead-lettered: that alert is on its way.
    dead = operator_prometheus.query('ALERTS{alertname="VsmDeadLettersGrowing"}')
    assert {s["metric"]["namespace"] for s in dead} == {NAMESPACE}
    assert not operator_prometheus.query('ALERTS{alertname="VsmServiceDown"}')


def alert_rules(server: PrivatePrometheus) -> list[dict[str, Any]]:
    groups = server.api("rules", type="alert")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def selectors(expr: str) -> set[str]:
    return {name + matchers for name, matchers in SELECTOR.findall(expr)}


def test_the_helm_test_script_passes_against_the_running_system(
    chart: list[dict[str, Any]], monitored_system: LocalSystem, under_load: Agents
) -> None:
    pod = objects(render(VALUES), "Pod")["vsm-test"]["spec"]["containers"][0]
    script = pod["command"][2]
    readyz = {name: f"{monitored_system.url(name)}/readyz" for name in monitored_system.ports}
    env = {
        "PATH": os.environ["PATH"],
        "READYZ": json.dumps(readyz),
        "STATUS_URL": f"{monitored_system.url('mcp-gateway')}/api/vsm/status",
        "MCP_AUTH_TOKEN": OPERATE_TOKEN,  # the operate token every launched system takes
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("/readyz 200") == 7
    assert "GET /api/vsm/status 200" in done.stdout
    broken = {**env, "READYZ": env["READYZ"].replace("/readyz", "/no-such-probe", 1)}
    failed = subprocess.run(
        [sys.executable, "-c", script],
        env=broken,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert failed.returncode != 0


def test_the_metrics_catalogue_is_what_the_services_export(
    prometheus: PrivatePrometheus, under_load: Agents
) -> None:
    """docs/metrics.md lists every vsm_*, process_* and python_* metric each service
    exports, with its type and labels, and nothing that no service exports; every service
    reports its own resident memory."""
    catalogue = documented()
    problems = []
    for service, addresses in prometheus.jobs.items():
        if service == "rabbitmq":
            continue
        with urllib.request.urlopen(f"http://{addresses[0]}/metrics", timeout=10) as answer:
            families = list(text_string_to_metric_families(answer.read().decode()))
        ours = [f for f in families if f.name.startswith(("vsm_", "process_", "python_"))]
        exported = {wire_name(f.name, f.type): f for f in ours}
        rss = [
            s.value for f in ours for s in f.samples if s.name == "process_resident_memory_bytes"
        ]
        if not rss or rss[0] <= 0:
            problems.append(f"{service} reports no resident memory: {rss}")
        listed = {name for name, entry in catalogue.items() if service in entry.services}
        always = {name for name in listed if not catalogue[name].conditional}
        problems += [
            f"{service} exports {n}, not in docs/metrics.md" for n in exported.keys() - listed
        ]
        problems += [
            f"docs/metrics.md lists {n} for {service}, not exported"
            for n in always - exported.keys()
        ]
        for name in exported.keys() & listed:
            family, entry = exported[name], catalogue[name]
            if family.type != entry.type:
                problems.append(f"{name}: exported as {family.type}, documented as {entry.type}")
            labels = {k for s in family.samples for k in s.labels} - {"le"}
            if not labels <= entry.labels:
                problems.append(f"{name}: labels {sorted(labels - entry.labels)} undocumented")
    assert not problems, "\n".join(problems)


def wire_name(name: str, kind: str) -> str:
    """The name as docs/metrics.md writes it: counters with their `_total`."""
    return f"{name}_total" if kind == "counter" else name


def test_every_value_is_finite_in_the_operators_scrape(
    operator_prometheus: OperatorPrometheus, under_load: Agents
) -> None:
    samples = operator_prometheus.query(f'vsm_viability{{namespace="{NAMESPACE}"}}')
    assert samples
    assert all(math.isfinite(float(s["value"][1])) for s in samples)
