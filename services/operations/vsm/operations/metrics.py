"""What S1 counts: agents by type and state (read from the registry when scraped), command
results by type and status, how long commands take, refused outbound destinations, and the
results exchanges of terminated agents still to be deleted (and the deletions that failed)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from vsm.contract.topology import S1_COMMANDS
from vsm.kit.egress import Reason
from vsm.kit.labels import OTHER
from vsm.operations.agents.base import AgentType
from vsm.operations.agents.catalog import AGENT_TYPES
from vsm.operations.cleanup import Cleanup
from vsm.operations.registry import Registry

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def declared_command(
    agent_type: str, command: str, kinds: Mapping[str, AgentType] = AGENT_TYPES
) -> str:
    """`command` as labelled: a command the agent type declares (among the types this
    process runs: a closed set), or `other`."""
    kind = kinds.get(agent_type)
    return command if kind is not None and command in kind.commands else OTHER


def narrow_command_key(exchange: str, routing_key: str) -> str:
    """An agent command's or result's routing key (`<type>.<agent>.<command>`, on S1's
    commands exchange or an agent's results exchange) with its type and command from the
    closed sets of the catalogue: made-up names do not become series."""
    if not exchange.endswith((S1_COMMANDS.name, ".results")):
        return routing_key
    parts = routing_key.split(".")
    if len(parts) != 3:
        return routing_key
    agent_type, agent_id, command = parts
    if (agent_type, command) == ("audit", "audit"):  # an S3* audit (`audit_key`)
        return routing_key
    known = agent_type if agent_type in AGENT_TYPES else OTHER
    return f"{known}.{agent_id}.{declared_command(agent_type, command)}"


class AgentCount(Collector):
    """`vsm_agents{vsm_id,agent_type,state}`, counted from the registry at scrape time."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "vsm_agents",
            "Agents in the registry, by type and state.",
            labels=["vsm_id", "agent_type", "state"],
        )
        tally = Tally((a.vsm_id, a.agent_type, a.state) for a in self.registry.agents.values())
        for (vsm_id, agent_type, state), count in sorted(tally.items()):
            family.add_metric([vsm_id, agent_type, state], count)
        yield family


class CleanupFailures(Collector):
    """`vsm_agent_cleanup_failures_total`, read from the cleanup at scrape time."""

    def __init__(self, cleanup: Cleanup) -> None:
        self.cleanup = cleanup

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "vsm_agent_cleanup_failures",
            "Deletions of terminated agents' results exchanges that failed (each tried again).",
            value=self.cleanup.failures,
        )


@dataclass(frozen=True)
class Metrics:
    commands: Counter
    duration: Histogram
    egress_refused: Counter
    _done: dict[tuple[str, str, str, str], tuple[Counter, Histogram]] = field(
        default_factory=dict, init=False, repr=False
    )
    """The series of each (vsm_id, agent_type, command, status) counted, kept once looked
    up: a command's path updates both, and `labels()` costs more than the update. Its
    labels come from closed sets (`declared_command`), so what is kept stays bounded."""

    def refused(self, agent_type: str, reason: Reason) -> None:
        self.egress_refused.labels(agent_type, reason).inc()

    def command_done(
        self, vsm_id: str, agent_type: str, command: str, status: str, seconds: float
    ) -> None:
        """One command's result (`command` as `declared_command` labels it) and duration."""
        key = (vsm_id, agent_type, command, status)
        series = self._done.get(key)
        if series is None:
            series = (
                self.commands.labels(*key),
                self.duration.labels(agent_type, command),
            )
            self._done[key] = series
        counted, timed = series
        counted.inc()
        timed.observe(seconds)


def create_metrics(
    prometheus: CollectorRegistry, registry: Registry, cleanup: Cleanup | None = None
) -> Metrics:
    prometheus.register(AgentCount(registry))
    pending = Gauge(
        "vsm_agent_cleanups_pending",
        "Terminated agents whose results exchanges are still to be deleted (in the background).",
        registry=prometheus,
    )
    pending.set_function(lambda: 0 if cleanup is None else len(cleanup))
    if cleanup is not None:
        prometheus.register(CleanupFailures(cleanup))
    return Metrics(
        commands=Counter(
            "vsm_commands",
            "Command results, `ok` or `error` (an error result is no handler failure).",
            ["vsm_id", "agent_type", "command", "status"],
            registry=prometheus,
        ),
        duration=Histogram(
            "vsm_command_duration_seconds",
            "Time from a command's start (after waiting for a slot) to its result.",
            ["agent_type", "command"],
            buckets=DURATION_BUCKETS,
            registry=prometheus,
        ),
        egress_refused=Counter(
            "vsm_egress_refused",
            "Outbound calls refused before any connection, by agent type and reason.",
            ["agent_type", "reason"],
            registry=prometheus,
        ),
    )
