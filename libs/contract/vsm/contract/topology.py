"""The broker topology as code: every exchange, queue and binding the services agree on.

Names are the canonical ones; a deployment may run under a namespace (a prefix applied
by the service kit at the broker boundary) so that several systems share one broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ALGEDONIC",
    "CONTROL",
    "COORDINATION",
    "DEAD_LETTER",
    "DELIVERY_LIMIT",
    "EXCHANGES",
    "HEALTH",
    "HEALTH_TTL_MS",
    "INTELLIGENCE",
    "INTERVENTIONS",
    "JOINS",
    "JOURNAL_RETENTION",
    "LOG_RETENTION",
    "OPERATORS",
    "OPERATOR_ALERTS",
    "OPERATOR_APPROVALS",
    "POLICY",
    "RECURSIVE",
    "REQUESTS",
    "S1_COMMANDS",
    "S1_REGISTRY",
    "S1_RESULTS",
    "SERVICES",
    "SHARED_QUEUES",
    "SYSTEM2_COORDINATION",
    "SYSTEM2_JOURNAL",
    "SYSTEM2_WORK",
    "SYSTEM3_CONTROL",
    "SYSTEM3_JOURNAL",
    "SYSTEM4_HEALTH",
    "SYSTEM4_INTELLIGENCE",
    "SYSTEM4_JOURNAL",
    "SYSTEM5_ALGEDONIC",
    "SYSTEM5_HEALTH",
    "SYSTEM5_INTELLIGENCE",
    "SYSTEM5_JOURNAL",
    "SYSTEM5_OPERATORS",
    "SYSTEM5_PERFORMANCE",
    "SYSTEM5_POLICIES",
    "SYSTEM5_RECURSIVE",
    "TRAIL",
    "VSM_ROLE",
    "Binding",
    "DeadLetterCap",
    "Exchange",
    "ExchangeType",
    "Join",
    "Queue",
    "QueueKind",
    "request_key",
    "requests_queue",
]

ExchangeType = Literal["fanout", "topic", "direct"]
QueueKind = Literal["quorum", "stream"]

DELIVERY_LIMIT = 5
"""Deliveries of one message before the broker dead-letters it (a handler that keeps failing)."""


@dataclass(frozen=True)
class DeadLetterCap:
    """How much one dead-letter queue holds. Past it the broker refuses new dead letters
    (`reject-publish`: the publisher is nacked, nothing already parked is dropped) rather
    than filling its disk until its alarm blocks every publisher."""

    max_messages: int = 10_000
    max_bytes: int = 128 * 1024 * 1024

    def arguments(self) -> dict[str, int | str]:
        return {
            "x-queue-type": "quorum",
            "x-max-length": self.max_messages,
            "x-max-length-bytes": self.max_bytes,
            "x-overflow": "reject-publish",
        }


@dataclass(frozen=True)
class Exchange:
    name: str
    type: ExchangeType
    description: str = ""


@dataclass(frozen=True)
class Join:
    """A fixed exchange-to-exchange binding: what `source` takes with `routing_key` goes on
    into `destination` too (a delivery still names `source` as its exchange)."""

    source: Exchange
    destination: Exchange
    routing_key: str
    description: str = ""


@dataclass(frozen=True)
class Binding:
    exchange: Exchange
    routing_key: str = ""


@dataclass(frozen=True)
class Queue:
    """A durable work queue; `kind="quorum"` queues get a dead-letter queue of their own
    (bound to the dead-letter exchange by this queue's name), or park their dead letters in a
    shared one (`shared_dead_letters`, bound once by its own name)."""

    name: str
    bindings: tuple[Binding, ...] = ()
    description: str = ""
    kind: QueueKind = "quorum"
    message_ttl_ms: int | None = None
    arguments: dict[str, int | str] = field(default_factory=dict, hash=False, compare=False)
    shared_dead_letters: str | None = None
    snapshots: bool = False
    """A stream of changes with periodic snapshots of the live state (`vsm.kit.snapshots`):
    its retention is the deployment's (`LOG_RETENTION` unless `VSM_LOG_*` say otherwise)."""

    @property
    def dead_letter_queue(self) -> str:
        return self.shared_dead_letters or f"{self.name}.dlq"

    @property
    def dead_letter_key(self) -> str:
        """The routing key of this queue's dead letters on the dead-letter exchange."""
        return self.shared_dead_letters or self.name


# Exchanges named in the design brief.
ALGEDONIC = Exchange("vsm.algedonic", "fanout", "Pleasure/pain signals from anyone, to S5 and S4.")
POLICY = Exchange("vsm.policy", "fanout", "Policy updates from S5 to every service.")
INTELLIGENCE = Exchange("vsm.intelligence", "topic", "Alerts, scans, adaptation proposals (S4).")
CONTROL = Exchange("vsm.control", "topic", "Allocations, resource events, audits (S3).")
RECURSIVE = Exchange("vsm.recursive", "topic", "Meta-VSM spawn, report and teardown.")
S1_COMMANDS = Exchange(
    "vsm.s1.commands",
    "topic",
    "Commands to S1 agents, key `<agent_type>.<agent_id>.<command>`; S3* audits "
    "(`audit.<agent_id>.audit`); joined from `vsm.control` (`allocation.*.changed`) and "
    "`vsm.coordination` (`s1.*.note`).",
)
S1_REGISTRY = Exchange(
    "vsm.s1.registry",
    "topic",
    "S1 registry events, key `agent.<spawned|terminated|crashed|rehomed>.<agent_type>`.",
)
S1_RESULTS = Exchange(
    "vsm.s1.results", "topic", "Aggregate of every agent's results exchange (observers bind here)."
)

# Exchanges this project adds.
HEALTH = Exchange("vsm.health", "fanout", "Periodic health reports of every service instance.")
REQUESTS = Exchange(
    "vsm.requests", "topic", "Request/reply to a service, key `<service>.<operation>`."
)
DEAD_LETTER = Exchange(
    "vsm.dead-letter", "direct", "Unprocessable messages, routed by the queue they came from."
)
COORDINATION = Exchange(
    "vsm.coordination",
    "topic",
    "S2: work for S1 (`work.<lane>`), notes between S1 units (`s1.<agent_id>.note`), "
    "oscillation, damping and rescheduling events, the oscillation index (`s2.oscillation`), "
    "queue pressure per agent type (`s2.pressure`).",
)
INTERVENTIONS = Exchange(
    "vsm.interventions",
    "topic",
    "S5's interventions, key `<opened|resolved>.<vsm_id>`: the link from pain to policy.",
)
OPERATORS = Exchange(
    "vsm.operators",
    "topic",
    "Alerts to operators (`alert.<severity>`) and their acks (`ack.alert`); decisions held "
    "for a person (`approval.requested`) and their end (`approval.decided.<outcome>`).",
)

EXCHANGES: tuple[Exchange, ...] = (
    ALGEDONIC,
    POLICY,
    INTELLIGENCE,
    CONTROL,
    RECURSIVE,
    S1_COMMANDS,
    S1_REGISTRY,
    S1_RESULTS,
    COORDINATION,
    INTERVENTIONS,
    HEALTH,
    REQUESTS,
    DEAD_LETTER,
    OPERATORS,
)

JOINS: tuple[Join, ...] = (
    Join(
        CONTROL,
        S1_COMMANDS,
        "allocation.*.changed",
        "S3's allocation changes (`allocation.<agent_id>.changed`) reach the agent through its "
        "one route into its partition (`*.<agent_id>.*`), as its commands do.",
    ),
    Join(
        COORDINATION,
        S1_COMMANDS,
        "s1.*.note",
        "S2's notes to an agent (`s1.<agent_id>.note`) reach it through its one route into its "
        "partition (`*.<agent_id>.*`), as its commands do.",
    ),
)
"""Exchange-to-exchange bindings every service declares at start-up with the exchanges: one
binding per agent then carries its commands, S3* audits, allocations and notes."""

HEALTH_TTL_MS = 30_000

# Queues named in the design brief.
SYSTEM5_ALGEDONIC = Queue(
    "vsm.system5.policy", (Binding(ALGEDONIC),), "S5's algedonic intake (pain and pleasure)."
)
SYSTEM5_HEALTH = Queue(
    "vsm.system5.health",
    (Binding(HEALTH),),
    "Health reports of every service, aggregated by S5.",
    message_ttl_ms=HEALTH_TTL_MS,
)
LOG_RETENTION: dict[str, int | str] = {
    "x-max-length-bytes": 512 * 1024 * 1024,
    "x-stream-max-segment-size-bytes": 16 * 1024 * 1024,
}
"""The default retention of a log of changes with snapshots (the policy and registry logs):
the broker drops its oldest 16 MiB segments beyond 512 MiB, never the segment being written.
Snapshots are written every `VSM_LOG_SNAPSHOT_EVERY` entries, far less than that, so the last
snapshot and everything after it are always kept (README, "Logs and snapshots")."""
SYSTEM5_POLICIES = Queue(
    "vsm.system5.policies",
    (Binding(POLICY), Binding(RECURSIVE, "spawned.#"), Binding(RECURSIVE, "retired.#")),
    "S5's durable log: every policy change and every change of the meta-system tree, with a "
    "snapshot of the live state every so many entries; read from the last snapshot on at "
    "start-up.",
    kind="stream",
    arguments=LOG_RETENTION,
    snapshots=True,
)
SYSTEM5_INTELLIGENCE = Queue(
    "vsm.system5.intelligence",
    (
        Binding(INTELLIGENCE, "adaptation.proposal.*"),
        Binding(INTELLIGENCE, "readiness"),
        Binding(CONTROL, "adaptation.transformational.proposed"),
    ),
    "S4's adaptation proposals and readiness, for S5's verdicts and viability; S3's spawn "
    "requests of the child viable systems transformational adaptations grow.",
)
SYSTEM5_PERFORMANCE = Queue(
    "vsm.system5.performance",
    (
        Binding(CONTROL, "s1.performance.*"),
        Binding(CONTROL, "s3.headroom"),
        Binding(COORDINATION, "s2.oscillation"),
    ),
    "The measured inputs of S5's viability: S1 units' Beer indices, S3's headroom, S2's "
    "oscillation index.",
    message_ttl_ms=HEALTH_TTL_MS,
)
SYSTEM5_RECURSIVE = Queue(
    "vsm.system5.recursive",
    (Binding(RECURSIVE, "escalation.#"), Binding(RECURSIVE, "report.#")),
    "What children tell their parent viable system: escalations and viability reports.",
)
TRAIL = Queue(
    "vsm.trail",
    (
        Binding(ALGEDONIC),
        Binding(INTERVENTIONS, "#"),
        Binding(POLICY),
        Binding(CONTROL, "allocation.#"),
        Binding(CONTROL, "audit.report"),
        Binding(CONTROL, "adaptation.#"),
        Binding(COORDINATION, "oscillation.#"),
        Binding(COORDINATION, "damping.#"),
        Binding(COORDINATION, "rescheduled.#"),
        Binding(COORDINATION, "s1.#"),
        Binding(RECURSIVE, "spawned.#"),
        Binding(RECURSIVE, "retired.#"),
        Binding(RECURSIVE, "escalation.#"),
        Binding(RECURSIVE, "meta.#"),
        Binding(INTELLIGENCE, "adaptation.#"),
        Binding(OPERATORS, "#"),
        # Structure: S5's requests to re-home agents, and the moves they made.
        Binding(REQUESTS, "operations.rehome"),
        Binding(S1_REGISTRY, "agent.rehomed.#"),
    ),
    "The causal trail (a stream, kept a day): every message of the loop, so that a chain "
    "signal -> intervention -> policy -> allocation can be rebuilt from causation ids.",
    kind="stream",
    arguments={"x-max-age": "1D", "x-max-length-bytes": 256 * 1024 * 1024},
)
SYSTEM5_OPERATORS = Queue(
    "vsm.system5.operators",
    (Binding(OPERATORS, "ack.#"),),
    "Operators' acknowledgements of S5's alerts (stop the escalation).",
)
OPERATOR_ALERTS = Queue(
    "vsm.operators.alerts",
    (Binding(OPERATORS, "alert.#"),),
    "Operator alerts awaiting delivery to people (the telegram-gateway consumes them).",
)
OPERATOR_APPROVALS = Queue(
    "vsm.operators.approvals",
    (Binding(OPERATORS, "approval.requested"),),
    "Decisions awaiting a person's approval, for the operators' chats (telegram-gateway).",
)
SYSTEM4_INTELLIGENCE = Queue(
    "vsm.system4.intelligence",
    (
        Binding(INTELLIGENCE, "scan.request"),
        Binding(INTELLIGENCE, "adaptation.request"),
        Binding(INTELLIGENCE, "observation.#"),
        Binding(INTELLIGENCE, "adaptation.verdict.*"),
        Binding(ALGEDONIC),
        Binding(CONTROL, "s1.performance.*"),
        Binding(COORDINATION, "s2.pressure"),
        # What S1 reads off the environment: sensor readings and outside APIs' answers. The
        # rest of S1's work reaches S4 summarised, as performance reports (one per agent
        # and window), not as one message per command.
        Binding(S1_RESULTS, "sensor.#"),
        Binding(S1_RESULTS, "api.#"),
        # The tree of viable systems: S4 keeps a state for each system S5 spawned.
        Binding(RECURSIVE, "spawned.#"),
        Binding(RECURSIVE, "retired.#"),
    ),
    "S4's intake: scan and adaptation requests, S5's verdicts, observations, algedonic "
    "signals, S1 performance, S2's queue pressure, the results of sensor and api agents, and "
    "the spawns and retirements of viable systems.",
)
SYSTEM4_HEALTH = Queue(
    "vsm.system4.health",
    (Binding(HEALTH),),
    "Health reports of every service, watched by S4 for changes of state.",
    message_ttl_ms=HEALTH_TTL_MS,
)

SYSTEM3_CONTROL = Queue(
    "vsm.system3.control",
    (
        Binding(CONTROL, "request.#"),
        Binding(CONTROL, "s1.performance.*"),
        Binding(CONTROL, "llm.usage.*"),
        Binding(POLICY),
        Binding(COORDINATION, "damping.*"),
        Binding(S1_REGISTRY, "agent.#"),
    ),
    "S3's intake: allocation requests, S1 performance, LLM usage, policy changes, S2's "
    "damping, S1 registry events.",
)
SYSTEM2_WORK = Queue(
    "vsm.system2.work",
    (Binding(COORDINATION, "work.#"),),
    "S1 work submitted for fair-share scheduling by S2 (held unacknowledged until dispatched).",
)
SYSTEM2_COORDINATION = Queue(
    "vsm.system2.coordination",
    (
        Binding(CONTROL, "allocation.*.changed"),
        Binding(CONTROL, "adaptation.*.done"),
        Binding(ALGEDONIC),
        Binding(S1_REGISTRY, "agent.#"),
    ),
    "S2's view of S1: allocation changes, adaptation steps and algedonic signals (to detect "
    "oscillation), registry events.",
)


JOURNAL_RETENTION: dict[str, int | str] = {
    "x-max-length-bytes": 64 * 1024 * 1024,
    "x-stream-max-segment-size-bytes": 4 * 1024 * 1024,
}
"""A journal's entries are whole snapshots, so only the latest counts: the broker drops the
oldest 4 MiB segments beyond 64 MiB (never by age: a state unchanged for a year is still the
state)."""
SYSTEM3_JOURNAL = Queue(
    "vsm.system3.journal",
    (),
    "S3's journal (a stream, written straight to it): a snapshot of its budgets, carved child "
    "budgets, grants, throttle expiries and S2's damping, after every change; control reads "
    "the last one back at start-up.",
    kind="stream",
    arguments=JOURNAL_RETENTION,
)
SYSTEM2_JOURNAL = Queue(
    "vsm.system2.journal",
    (),
    "S2's journal (a stream, written straight to it): a snapshot of its lanes (weights, "
    "dispatches), its damping and the oscillation history behind it, when a weight or a "
    "damping changes and every report interval otherwise; coordinator reads the last one "
    "back at start-up.",
    kind="stream",
    arguments=JOURNAL_RETENTION,
)

SYSTEM4_JOURNAL = Queue(
    "vsm.system4.journal",
    (),
    "S4's journal (a stream, written straight to it): a snapshot of every viable system's own "
    "rules, after every change; intelligence reads the last one back at start-up.",
    kind="stream",
    arguments=JOURNAL_RETENTION,
)

SYSTEM5_JOURNAL = Queue(
    "vsm.system5.journal",
    (),
    "S5's journal (a stream, written straight to it): a snapshot of its interventions not yet "
    "resolved and the approvals waiting for a person, after every change; queen reads the "
    "last one back at start-up.",
    kind="stream",
    arguments=JOURNAL_RETENTION,
)


def requests_queue(service: str) -> Queue:
    """The queue where `service` answers requests sent on `vsm.requests` as `<service>.*`."""
    return Queue(
        f"vsm.{service}.requests",
        (Binding(REQUESTS, f"{service}.#"),),
        f"Requests to {service} (request/reply).",
    )


def request_key(service: str, operation: str) -> str:
    return f"{service}.{operation}"


SERVICES: tuple[str, ...] = (
    "queen",
    "intelligence",
    "control",
    "coordinator",
    "operations",
    "telegram-gateway",
    "mcp-gateway",
)
"""Every deployable, in VSM order (S5 down to S1, then the gateways)."""

VSM_ROLE: dict[str, str] = {
    "queen": "S5",
    "intelligence": "S4",
    "control": "S3",
    "coordinator": "S2",
    "operations": "S1",
    "telegram-gateway": "gateway",
    "mcp-gateway": "gateway",
}


SHARED_QUEUES: tuple[Queue, ...] = (
    SYSTEM5_HEALTH,
    SYSTEM5_ALGEDONIC,
    SYSTEM5_POLICIES,
    SYSTEM5_INTELLIGENCE,
    SYSTEM5_PERFORMANCE,
    SYSTEM5_OPERATORS,
    OPERATOR_ALERTS,
    OPERATOR_APPROVALS,
    SYSTEM4_INTELLIGENCE,
    SYSTEM4_HEALTH,
    SYSTEM5_RECURSIVE,
    SYSTEM3_CONTROL,
    SYSTEM2_WORK,
    SYSTEM2_COORDINATION,
    TRAIL,
    *(requests_queue(service) for service in SERVICES),
)
"""Queues every service declares at start-up, so that no publish finds its route missing."""
