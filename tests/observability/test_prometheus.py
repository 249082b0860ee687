"""Every panel of every generated dashboard shows live data from a real system.

A private Prometheus scrapes the seven services and the broker's own plugin every second
while the system is under load (tests/observability/load.py); each panel's query then goes
through Prometheus' HTTP API and must return at least one finite sample. Nothing is
skipped silently: a panel whose metric is still to come is listed in AWAITING with the
issue that brings it, its query must still be valid PromQL, and the summary names the
ones that show data already (time to move them out of the list); a query that charts
failures which a healthy run does not have is listed in QUIET and checked for its metric
being exported instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import defaultdict

import pytest

from scripts.localrun import LocalSystem
from tests.observability.broker import MonitoredRabbitMQ
from tests.observability.load import episode, steady
from tests.observability.panels import Query, queries
from tests.observability.prometheus import PrivatePrometheus, PromQLError
from tests.support.probe import open_probe
from tests.support.tokens import gateway_client

pytestmark = pytest.mark.integration

AWAITING: dict[tuple[str, str], str] = {}
"""Panels whose metric no service exports yet, with the issue that brings it (none now)."""
NO_FAILURES = "only counts failures, and a healthy run has none"
QUIET: dict[tuple[str, str, str], str] = {
    ("vsm-messaging", "Unexpected handler failures per second, by service, queue and error", "A"): (
        NO_FAILURES
    ),
    ("vsm-messaging", "Publish and handler exceptions per second", "A"): NO_FAILURES,
    ("vsm-messaging", "Publish and handler exceptions per second", "B"): NO_FAILURES,
    ("vsm-s1-operations", "Rejected input and failures in operations", "B"): NO_FAILURES,
}
DEADLINE_S = 90  # for every query to show data while the load runs


def has_data(prometheus: PrivatePrometheus, query: Query) -> bool:
    """At least one finite sample now (a quantile of nothing is NaN: no data in Grafana)."""
    samples = prometheus.query(query.expr)
    return any(math.isfinite(float(sample["value"][1])) for sample in samples)


def poll(prometheus: PrivatePrometheus, wanted: list[Query]) -> list[Query]:
    """Query until each of `wanted` has data or the deadline passes; those still without."""
    pending = list(wanted)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        pending = [query for query in pending if not has_data(prometheus, query)]
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(1)


def unexported(prometheus: PrivatePrometheus, query: Query) -> set[str]:
    """The metrics of a valid `query` that no scraped target declares (HELP/TYPE lines are
    scraped even for a metric with no samples yet)."""
    prometheus.query(query.expr)  # raises on invalid PromQL
    return {name for name in query.metrics if not prometheus.api("metadata", metric=name)}


@pytest.mark.timeout(420)  # up to 180 s to start the system, 90 s to see data
async def test_every_panel_query_returns_data(
    broker: MonitoredRabbitMQ,
    monitored_system: LocalSystem,
    prometheus: PrivatePrometheus,
    capsys: pytest.CaptureFixture[str],
) -> None:
    everything = queries()
    assert len({q.dashboard for q in everything}) >= 5, "the generated dashboards are missing"
    awaiting = [q for q in everything if (q.dashboard, q.panel) in AWAITING]
    quiet = [q for q in everything if (q.dashboard, q.panel, q.ref) in QUIET]
    live = [q for q in everything if q not in awaiting and q not in quiet]
    assert {(q.dashboard, q.panel) for q in awaiting} == set(AWAITING), "stale AWAITING entry"
    assert {(q.dashboard, q.panel, q.ref) for q in quiet} == set(QUIET), "stale QUIET entry"

    namespace = monitored_system.env["VSM_NAMESPACE"]
    async with (
        gateway_client(monitored_system, timeout=30) as gateway,
        open_probe(broker.url, namespace) as probe,
    ):
        agents = await episode(gateway, probe)
        load = asyncio.create_task(steady(gateway, agents))
        try:
            without_data = await asyncio.to_thread(poll, prometheus, live)
            arrived = [q for q in awaiting if has_data(prometheus, q)]
        finally:
            load.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await load

    assert not without_data, "panels without data:\n" + "\n".join(
        f"  {q.dashboard} / {q.panel} [{q.ref}]: {q.expr}" for q in without_data
    )
    missing = {f"{q.dashboard} / {q.panel} [{q.ref}]": unexported(prometheus, q) for q in quiet}
    assert not any(missing.values()), f"quiet queries chart metrics nobody exports: {missing}"

    panels: dict[tuple[str, str], list[Query]] = defaultdict(list)
    for query in everything:
        panels[(query.dashboard, query.panel)].append(query)
    with_data = [*live, *arrived]
    verified = [key for key, qs in panels.items() if all(q in with_data for q in qs)]
    with capsys.disabled():
        print(
            f"\n{len(verified)} of {len(panels)} dashboard panels verified against live data "
            f"({len(with_data)} queries); {len(quiet)} failure queries quiet (metric exported, no "
            f"failure happened); {len(AWAITING)} panels awaiting their metrics:"
        )
        for (dashboard, panel), why in AWAITING.items():
            shows = any(q in arrived for q in panels[(dashboard, panel)])
            print(f"  {dashboard} / {panel}: {why}" + (" [shows data now]" if shows else ""))


def test_the_check_tells_a_missing_metric_and_bad_promql(prometheus: PrivatePrometheus) -> None:
    missing = Query("test", "missing", "A", 'sum(rate(vsm_no_such_metric_total{x=~".*"}[15s]))')
    assert not has_data(prometheus, missing)
    assert unexported(prometheus, missing) == {"vsm_no_such_metric_total"}
    with pytest.raises(PromQLError):
        prometheus.query("sum by (app_name (vsm_amqp_received_messages_total)")
