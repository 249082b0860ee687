"""Polling the outside sources: each on its own interval with jitter, through the kit's
egress client (the operator's allow-list, checked again at connect time), its body read up
to the operator's cap. A source that times out, refuses, answers an error or garbage is
counted by kind and skipped until its next poll; nothing it answers can stop S4.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import structlog

from vsm.intelligence.sources import Failure, SourceConfig, SourceState, extract
from vsm.kit.egress import Blocked, EgressPolicy, OnDemand
from vsm.kit.schedule import Every

log = structlog.get_logger("vsm.intelligence.polling")
JITTER = 0.2
"""Each wait is the interval give or take a fifth: sources are not polled in lockstep."""

Deliver = Callable[[SourceConfig, dict[str, float]], Awaitable[None]]
Count = Callable[[str, str], None]
"""(source, outcome) -> count one poll."""


class Outside:
    def __init__(
        self,
        sources: list[SourceConfig],
        policy: EgressPolicy,
        http: OnDemand,
        deliver: Deliver,
        count: Count,
    ) -> None:
        self.sources = sources
        self.policy = policy
        self.http = http
        self.deliver = deliver
        self.count = count
        self.states = {s.name: SourceState() for s in sources}

    def schedules(self) -> list[Every]:
        return [
            Every(f"source:{s.name}", s.interval_s, partial(self.poll, s), jitter=JITTER)
            for s in self.sources
        ]

    async def poll(self, source: SourceConfig) -> None:
        found = await self.read(source)
        state = self.states[source.name]
        state.polls += 1
        if isinstance(found, str):
            state.failures += 1
            state.last_failure = found
            self.count(source.name, found)
            log.warning("source_failed", source=source.name, failure=found)
            return
        state.last_readings = found
        self.count(source.name, "ok")
        await self.deliver(source, found)

    async def read(self, source: SourceConfig) -> dict[str, float] | Failure:
        import httpx  # with the client, on the first poll: none without outside sources

        from vsm.kit.egress.client import fetch

        try:
            answer = await fetch(
                self.http(),
                "GET",
                str(source.url),
                self.policy.max_body_bytes,
                timeout=source.timeout_s,
                headers={"Accept": "application/json"},
            )
        except Blocked:
            return "refused"
        except httpx.TimeoutException:
            return "timeout"
        except httpx.HTTPError:
            return "unreachable"
        if answer.status_code >= 400:
            return "http_status"
        if answer.truncated:
            return "not_json"
        return extract(source, answer.content)

    async def close(self) -> None:
        await self.http.aclose()
