"""Prometheus label values from closed sets, so no caller or message can grow `/metrics`.

A label whose value comes from outside (a viable-system id, a routing key a caller chose)
takes the first values seen up to a limit, then `other` (`BoundedLabel`). The AMQP series'
`handler` and `destination` are `<exchange>.<routing key>`: reply-to queues become
`amq.rabbitmq.reply-to`, a service may narrow a routing key to its closed form (operations
maps an agent command's name to its type's declared command or `other`), and after
`MAX_ROUTES` distinct labels a service's further ones become `<exchange>.other`. Every
service labels an agent's performance report (`s1.performance.<agent id>`) without the id
(`narrow_agent_keys`): one series for all agents, not `MAX_ROUTES` of them, each a histogram,
which made a scrape of S3, S4 or S5 with thousands of agents megabytes long.
"""

from __future__ import annotations

from collections.abc import Callable

from vsm.contract.performance import performance_key

__all__ = [
    "MAX_ROUTES",
    "OTHER",
    "REPLY_TO",
    "BoundedLabel",
    "Narrow",
    "RouteLabels",
    "narrow_agent_keys",
]

OTHER = "other"
MAX_ROUTES = 256
"""Distinct `handler`/`destination` values a service labels before `<exchange>.other`."""
REPLY_TO = "amq.rabbitmq.reply-to"

Narrow = Callable[[str, str], str]
"""(exchange, routing key) -> the routing key as labelled, from a closed set."""


class BoundedLabel:
    """A label's values as first seen, up to `limit`; later ones become `other`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return OTHER
        self.seen.add(value)
        return value


PER_AGENT = performance_key("")
"""The routing keys that end in an agent's id: `s1.performance.<agent id>`."""


def narrow_agent_keys(exchange: str, routing_key: str) -> str:
    """An agent's performance report labelled `s1.performance.agent`, and an S3* audit of one
    agent (`audit.<agent id>.audit`) `audit.agent.audit`, whichever agent."""
    if routing_key.startswith(PER_AGENT):
        return f"{PER_AGENT}agent"
    if routing_key.startswith("audit.") and routing_key.endswith(".audit"):
        return "audit.agent.audit"
    return routing_key


class RouteLabels:
    """The `handler` and `destination` labels of a service's AMQP series."""

    def __init__(self, limit: int = MAX_ROUTES) -> None:
        self.seen = BoundedLabel(limit)
        self.narrowers: list[Narrow] = [narrow_agent_keys]

    def __call__(self, exchange: str, routing_key: str) -> str:
        if routing_key.startswith(REPLY_TO):
            routing_key = REPLY_TO
        for narrow in self.narrowers:
            routing_key = narrow(exchange, routing_key)
        place = exchange or "default"
        label = self.seen(f"{place}.{routing_key}")
        return f"{place}.{OTHER}" if label == OTHER else label
