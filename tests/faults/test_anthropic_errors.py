"""Anthropic API faults, met by both LLM users: an `llm_worker` agent (operations) and S5's
policy synthesis (queen), each a real process whose real SDK talks to the loopback fake.

- a 529 storm: bounded retries, spaced with jitter; then the llm_worker answers
  `llm_unavailable` (how many attempts, within its deadline) and S5 falls back to its rules;
- a refused key (401) and a reached spend limit (429 `enforced_spend_limit_reached`): one
  request, no retry, a message that says which;
- a 200 whose body breaks off: retried like a dropped connection, and the next answer is used.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.localrun import LocalSystem
from tests.support.fake_anthropic import FakeAnthropic, RecordedRequest
from tests.support.faults import QUORUM_SETTLE_S, Report, clean_up, sender_bus, spawn, start_system
from vsm.contract import topology
from vsm.contract.operations import AgentCommand, CommandResult, command_key
from vsm.contract.system5 import SynthesisRequest, SynthesisResult
from vsm.kit.bus import Bus, expect
from vsm.operations.agents.llm_calls import BASE_BACKOFF_S, MAX_ATTEMPTS, backoff

pytestmark = [pytest.mark.integration, pytest.mark.fault]

API_KEY = "test-key"
RETRY_DEADLINE_S = 4.0
QUEEN_RETRIES = 3
AGENTS: list[str] = []


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def system(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory, fake: FakeAnthropic
) -> Iterator[LocalSystem]:
    running = start_system(
        amqp_url,
        Path(tmp_path_factory.mktemp("logs")),
        ["operations", "queen"],
        LLM_RETRY_DEADLINE_S=str(RETRY_DEADLINE_S),
        LLM_MAX_RETRIES=str(QUEEN_RETRIES),
        LLM_TIMEOUT_S="10",
        **fake.env(API_KEY),
    )
    yield running
    running.stop()
    asyncio.run(clean_up(amqp_url, running.env["VSM_NAMESPACE"], AGENTS))


@pytest.fixture(scope="module")
async def bus(system: LocalSystem, amqp_url: str) -> AsyncIterator[Bus]:
    async with sender_bus(amqp_url, system.env["VSM_NAMESPACE"]) as client:
        yield client


@pytest.fixture(scope="module")
async def llm_worker(bus: Bus) -> str:
    agent_id = await spawn(bus, "llm_worker", model="claude-haiku-4-5")
    AGENTS.append(agent_id)
    await asyncio.sleep(QUORUM_SETTLE_S)
    return agent_id


@pytest.fixture(autouse=True)
def fresh_script(fake: FakeAnthropic) -> None:
    fake.reset()


async def chat(bus: Bus, agent_id: str, message: str = "hello") -> CommandResult:
    reply = await bus.ask(
        AgentCommand(command_type="chat", data={"message": message}),
        exchange=topology.S1_COMMANDS,
        routing_key=command_key("llm_worker", agent_id, "chat"),
        timeout=60,
    )
    return expect(reply, CommandResult)


async def synthesise(bus: Bus, vsm_id: str) -> SynthesisResult:
    anomaly = SynthesisRequest(anomaly_type="latency", severity=0.6, context={"agent_id": "a-1"})
    return await bus.query(
        "queen", "synthesis", anomaly, SynthesisResult, vsm_id=vsm_id, timeout=60
    )


def of_queen(fake: FakeAnthropic) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.path == "/v1/messages" and "System 5" in str(r.system)]


def of_worker(fake: FakeAnthropic) -> list[RecordedRequest]:
    return [
        r for r in fake.requests if r.path == "/v1/messages" and "System 5" not in str(r.system)
    ]


def pauses(requests: list[RecordedRequest]) -> list[float]:
    return [round(b.at - a.at, 3) for a, b in itertools.pairwise(requests)]


def test_backoff_is_bounded_and_jittered() -> None:
    for attempt in range(10):
        draws = {backoff(attempt) for _ in range(200)}
        bound = min(8.0, BASE_BACKOFF_S * 2**attempt)
        assert all(0.1 * bound <= d <= bound for d in draws)
        assert len(draws) > 150  # spread, not one fixed schedule


@pytest.mark.timeout(180)
async def test_a_529_storm_is_retried_boundedly_then_answered_or_falls_back(
    bus: Bus, llm_worker: str, fake: FakeAnthropic, report: Report
) -> None:
    fake.fail_times(200, 529, retry_after=None)  # overloaded, without a retry-after hint

    began = time.monotonic()
    result = await chat(bus, llm_worker)
    took = time.monotonic() - began
    worker_calls = of_worker(fake)

    synthesis = await synthesise(bus, "root/storm")
    queen_calls = of_queen(fake)
    report(
        "anthropic_529_storm",
        llm_worker_code=result.error.code if result.error else None,
        llm_worker_attempts=len(worker_calls),
        llm_worker_pauses_s=pauses(worker_calls),
        llm_worker_took_s=round(took, 2),
        queen_outcome=synthesis.llm_outcome,
        queen_applied=synthesis.source,
        queen_attempts=len(queen_calls),
        queen_pauses_s=pauses(queen_calls),
        lost=0 if result.error and synthesis.applied else 1,
    )
    assert result.status == "error"
    assert result.error is not None
    assert result.error.code == "llm_unavailable"
    assert result.error.details["attempts"] == len(worker_calls)
    assert 2 <= len(worker_calls) <= MAX_ATTEMPTS
    assert took <= RETRY_DEADLINE_S + 3  # the deadline, give or take the round trips
    assert all(p >= 0.1 * BASE_BACKOFF_S for p in pauses(worker_calls))

    assert synthesis.llm_outcome == "error"
    assert "529" in synthesis.llm_detail
    assert "fell back to the rules" in synthesis.llm_detail
    assert synthesis.source == "rules"
    assert synthesis.applied is not None
    assert len(queen_calls) == 1 + QUEEN_RETRIES


@pytest.mark.parametrize(
    ("fault", "code", "words"),
    [
        ("401", "llm_auth_failed", "refused the key (401)"),
        ("spend_limit", "llm_spend_limit", "spend limit is reached (429)"),
    ],
)
async def test_a_refused_key_or_a_spend_limit_is_not_retried_and_says_why(
    bus: Bus,
    llm_worker: str,
    fake: FakeAnthropic,
    report: Report,
    fault: str,
    code: str,
    words: str,
) -> None:
    def script() -> Any:
        return fake.fail(401) if fault == "401" else fake.spend_limit()

    script()
    result = await chat(bus, llm_worker)
    script()
    synthesis = await synthesise(bus, f"root/{fault.replace('_', '-')}")
    report(
        f"anthropic_{fault}",
        llm_worker_code=result.error.code if result.error else None,
        llm_worker_attempts=len(of_worker(fake)),
        queen_outcome=synthesis.llm_outcome,
        queen_attempts=len(of_queen(fake)),
        queen_detail=repr(synthesis.llm_detail[:80]),
    )
    assert result.error is not None
    assert result.error.code == code
    assert words in result.error.message
    assert len(of_worker(fake)) == 1
    assert synthesis.llm_outcome == "error"
    assert words in synthesis.llm_detail
    assert synthesis.source == "rules"
    assert len(of_queen(fake)) == 1


async def test_a_response_that_breaks_off_after_the_200_is_retried(
    bus: Bus, llm_worker: str, fake: FakeAnthropic, report: Report
) -> None:
    fake.fail_stream_midway().reply_text("whole answer")
    result = await chat(bus, llm_worker)
    fake.fail_stream_midway().reply_tool_use(
        "propose_policy",
        {
            "rationale": "latency: slow it down a little",
            "policy": {
                "policy_type": "throttle",
                "limits": [{"target": "a-1", "max_rate_per_s": 5.0, "reason": "latency"}],
            },
        },
    )
    synthesis = await synthesise(bus, "root/broken-body")
    report(
        "anthropic_broken_body",
        llm_worker_status=result.status,
        llm_worker_attempts=len(of_worker(fake)),
        queen_outcome=synthesis.llm_outcome,
        queen_attempts=len(of_queen(fake)),
        lost=0 if result.status == "ok" and synthesis.llm_outcome == "used" else 1,
    )
    assert result.status == "ok"
    assert result.result is not None
    assert result.result["text"] == "whole answer"
    assert result.result["attempts"] == 2
    assert synthesis.llm_outcome == "used"
    assert len(of_queen(fake)) == 2
