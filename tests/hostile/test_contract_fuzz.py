"""Contract: Hypothesis generates envelopes and bodies for every registered message model, valid
and corrupted, and publishes them raw to every consumed queue of the running system.

Bodies come from each model's JSON schema (hypothesis-jsonschema); corruptions drop a field,
change a type, add a field, blow a string up, break the envelope, lie about the type, or are
not JSON at all. JSON bodies are signed with the system's key, so they get past the signature
check to the validation behind it; the rest (and a share sent unsigned) must be refused by
it. The contract itself is the oracle: whatever `Envelope[Message]` refuses, or that is not
signed, must be parked on the queue's dead-letter queue with a reason. No service may crash,
and no message may exhaust its deliveries (a handler failing on it).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractChannel
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from pydantic import TypeAdapter

from scripts.localrun import SERVICES, LocalSystem
from tests.security.signed import ring
from tests.support.hostile import SIGNING_KEYS, assert_all_alive
from vsm.contract import message_types, telegram, topology
from vsm.contract.envelope import Envelope
from vsm.contract.message import Message
from vsm.kit.deadletter import REASON_HEADER
from vsm.kit.names import Namespace

pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]

CASES = 480
"""Generated messages in all (a bound: the module runs in a few minutes)."""
QUEUES = [
    q
    for q in (*topology.SHARED_QUEUES, telegram.TELEGRAM_COMMANDS)
    if q.kind == "quorum" and q.bindings
]
EXHAUSTS: dict[tuple[str, bytes], str] = {}
"""Known (reported) inputs that exhaust their deliveries: (queue, body prefix) -> why."""
MODELS = sorted(message_types().items())
DOCS = Path(__file__).parents[2] / "docs" / "asyncapi"


def handled_types() -> dict[str, list[str]]:
    """The message types each queue's handlers take, from the generated AsyncAPI documents
    (a queue missing there gets any type): most bodies then get past the type filter to the
    validation of a handler's own model."""
    by_name = {model.__name__: message_type for message_type, model in MODELS}
    handled: dict[str, set[str]] = {}
    for document in DOCS.glob("*.json"):
        spec = json.loads(document.read_text())
        messages = {unquote(k): v for k, v in spec["components"]["messages"].items()}
        for channel in spec["channels"].values():
            amqp = channel.get("bindings", {}).get("amqp", {})
            if amqp.get("is") != "queue":
                continue
            for ref in channel["messages"].values():
                payload = messages[unquote(ref["$ref"].rsplit("/", 1)[1])]["payload"]
                for option in [payload, *payload.get("oneOf", []), *payload.get("anyOf", [])]:
                    name = unquote(option.get("$ref", "")).rsplit("/", 1)[-1]
                    if name.startswith("Envelope[") and name[9:-1] in by_name:
                        handled.setdefault(amqp["queue"]["name"], set()).add(by_name[name[9:-1]])
    return {queue: sorted(types) for queue, types in handled.items()}


HANDLED = handled_types()
KINDS = (
    "valid",
    "valid",
    "missing field",
    "wrong type",
    "extra field",
    "huge string",
    "bad data",
    "bad envelope field",
    "type mismatch",
    "unknown type",
    "not JSON",
    "unsigned",
)
ANY_ENVELOPE = TypeAdapter(Envelope[Message])
KEYRING = ring(SIGNING_KEYS)
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)
BAD_ENVELOPE_FIELDS = {
    "specversion": st.sampled_from(["0.3", "", 1]),
    "id": st.sampled_from(["", "x" * 129, 7, None]),
    "source": st.sampled_from(["", "s" * 257, None]),
    "time": st.sampled_from(["yesterday", "2024-01-01T00:00:00", "", [], "9999-99-99T00:00Z"]),
    "vsmid": st.sampled_from(["../../etc", "root/" + "a/" * 10, "ROOT", ""]),
    "vsm_id": st.sampled_from(["../../etc", "ROOT"]),  # the name of 0.1, still read
    "priority": st.sampled_from([-1, 10, 99, "high", 4.5]),
    "traceparent": st.sampled_from(["zz", "00-" + "0" * 31, 5]),
    "datacontenttype": st.sampled_from(["text/xml", ""]),
    "subject": st.sampled_from(["s" * 257, 12]),
}


@dataclass
class Case:
    queue: topology.Queue
    kind: str
    model: str
    envelope: dict[str, Any] | None
    raw: bytes | None = None
    signed: bool = True

    def body(self, number: int) -> bytes:
        if self.envelope is None:
            assert self.raw is not None
            return self.raw
        envelope = dict(self.envelope)
        if envelope.get("id") == "":  # the generated id; a corrupted one is kept
            envelope["id"] = f"fuzz-{number}"
        envelope.setdefault("time", datetime.now(UTC).isoformat())
        return json.dumps(envelope).encode()


_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {}


def bodies(message_type: str, model: type[Message]) -> st.SearchStrategy[Any]:
    if message_type not in _STRATEGIES:
        _STRATEGIES[message_type] = from_schema(model.model_json_schema())
    return _STRATEGIES[message_type]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    queue = draw(st.sampled_from(QUEUES))
    handled = HANDLED.get(queue.name)
    if handled and draw(st.integers(0, 3)):  # three times in four: a type the queue takes
        message_type = draw(st.sampled_from(handled))
        model = dict(MODELS)[message_type]
    else:
        message_type, model = draw(st.sampled_from(MODELS))
    kind = draw(st.sampled_from(KINDS))
    data: Any = draw(bodies(message_type, model))
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": "",
        "source": "vsm/fuzz",
        "type": message_type,
        "data": data,
    }
    fields = list(data) if isinstance(data, dict) else []
    if kind == "missing field":
        required = model.model_json_schema().get("required", [])
        if required:
            del data[draw(st.sampled_from(required))]
        else:
            del envelope[draw(st.sampled_from(["id", "source", "type", "data"]))]
    elif kind == "wrong type" and fields:
        data[draw(st.sampled_from(fields))] = draw(JUNK)
    elif kind in {"extra field", "wrong type"}:
        data["unexpected_" + draw(st.text(min_size=1, max_size=8))] = draw(JUNK)
    elif kind == "huge string":
        size = draw(st.integers(min_value=64 * 1024, max_value=1024 * 1024))
        target = draw(st.sampled_from([*fields, "subject", "source"]))
        (data if target in fields else envelope)[target] = "A" * size
    elif kind == "bad data":
        envelope["data"] = draw(st.one_of(st.none(), st.lists(JUNK, max_size=3), st.text()))
    elif kind == "bad envelope field":
        name = draw(st.sampled_from(sorted(BAD_ENVELOPE_FIELDS)))
        envelope[name] = draw(BAD_ENVELOPE_FIELDS[name])
    elif kind == "type mismatch":
        envelope["type"] = draw(st.sampled_from([t for t, _ in MODELS if t != message_type]))
    elif kind == "unknown type":
        envelope["type"] = "vsm.fuzz." + draw(st.from_regex(r"[a-z]{1,12}", fullmatch=True))
    elif kind == "not JSON":
        raw = draw(
            st.one_of(
                st.binary(min_size=1, max_size=200),
                st.just(b'{"specversion": "1.0", "id": '),
                st.just(b'{"type": "vsm.ping.v1", "data": {}, "priority": NaN}'),
                st.just(b"\xff\xfe" + json.dumps(envelope).encode()),
                st.integers(min_value=2_000, max_value=200_000).map(lambda n: b"[" * n),
                st.just(b'{"id": "a", "id": "b", "type": "vsm.ping.v1"}'),
            )
        )
        return Case(queue, kind, message_type, None, raw=raw, signed=False)
    return Case(queue, kind, message_type, envelope, signed=kind != "unsigned")


EDGES = {
    "empty body": b"",
    "JSON null": b"null",
    "JSON string": b'"vsm.ping.v1"',
    "nested too deeply": b"[" * 100_000 + b"]" * 100_000,
    "4 MiB of spaces": b" " * (4 * 1024 * 1024) + b"{}",
}
"""Sent to every queue as they are, besides what Hypothesis generates."""


def exhausted_known(queue: str, body: bytes) -> str | None:
    return next(
        (why for (q, p), why in EXHAUSTS.items() if q == queue and body.startswith(p)), None
    )


def generate() -> list[Case]:
    generated: list[Case] = [
        Case(queue, f"edge: {name}", "", None, raw=raw, signed=False)
        for queue in QUEUES
        for name, raw in EDGES.items()
    ]

    @settings(
        max_examples=CASES,
        database=None,
        derandomize=True,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(cases())
    def collect(case: Case) -> None:
        generated.append(case)

    collect()
    return generated


def contract_refuses(body: bytes) -> bool:
    """As a service reads it: JSON decoded first, then the envelope validated."""
    try:
        ANY_ENVELOPE.validate_python(json.loads(body))
    except (ValueError, RecursionError):  # ValidationError and JSONDecodeError among them
        return True
    return False


def headers_for(case: Case, body: bytes, queue: str) -> dict[str, Any]:
    """Signed for where it is published: straight to `queue` through the default exchange."""
    if not case.signed:
        return {}
    try:
        return dict(KEYRING.sign(body, "", queue))
    except ValueError:  # not strict JSON (a duplicate key): it goes unsigned
        return {}


async def park_all(channel: AbstractChannel, namespace: Namespace) -> list[tuple[str, Any]]:
    """Everything on the dead-letter queues right now: (queue, message), acked."""
    parked = []
    for queue in QUEUES:
        dlq = await channel.get_queue(namespace.name(queue.dead_letter_queue), ensure=False)
        while (message := await dlq.get(no_ack=True, fail=False)) is not None:
            parked.append((queue.name, message))
    return parked


async def handler_failures(system: LocalSystem) -> float:
    total = 0.0
    async with httpx.AsyncClient(timeout=10) as http:
        for service in SERVICES:
            text = (await http.get(f"{system.url(service)}/metrics")).text
            total += sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("vsm_handler_failures_total{")
            )
    return total


async def test_generated_bad_input_on_every_queue_is_parked_with_a_reason(
    hostile_system: LocalSystem,
) -> None:
    namespace = Namespace(hostile_system.env["VSM_NAMESPACE"])
    started = time.monotonic()
    generated = generate()
    generation_s = time.monotonic() - started
    expected: Counter[tuple[str, bytes]] = Counter()
    tried: Counter[str] = Counter()
    failures_before = await handler_failures(hostile_system)

    connection = await aio_pika.connect(hostile_system.env["AMQP_URL"])
    async with connection:
        channel = await connection.channel()
        await park_all(channel, namespace)  # start from empty dead-letter queues
        for number, case in enumerate(generated):
            body = case.body(number)
            headers = headers_for(case, body, namespace.name(case.queue.name))
            refused = contract_refuses(body) or not headers
            if refused:
                expected[(case.queue.name, body)] += 1
            tried[f"{case.kind} ({'refused' if refused else 'acceptable'})"] += 1
            await channel.default_exchange.publish(
                aio_pika.Message(body, headers=headers, content_type="application/json"),
                routing_key=namespace.name(case.queue.name),
            )

        parked: list[tuple[str, Any]] = []
        missing: Counter[tuple[str, bytes]] = Counter(expected)
        deadline = time.monotonic() + 60
        while +missing and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            for queue, message in await park_all(channel, namespace):
                parked.append((queue, message))
                missing[(queue, message.body)] -= 1
            missing = +missing
        await asyncio.sleep(2)  # deliveries of acceptable ones that kept failing, if any
        parked += await park_all(channel, namespace)

    reasons = Counter(str(m.headers.get(REASON_HEADER)) for _, m in parked)
    exhausted = [(q, m) for q, m in parked if REASON_HEADER not in (m.headers or {})]
    known = [(q, m) for q, m in exhausted if exhausted_known(q, m.body)]
    without_reason = [
        (q, m.body[:120], m.headers.get("x-death"))
        for q, m in exhausted
        if not exhausted_known(q, m.body)
    ]
    failures = await handler_failures(hostile_system) - failures_before
    print(
        f"\ncontract fuzzing: {len(generated)} generated messages over {len(QUEUES)} queues and "
        f"{len({c.model for c in generated})} of {len(MODELS)} message types "
        f"(generated in {generation_s:.0f} s); {sum(expected.values())} must be refused"
    )
    for kind, count in sorted(tried.items()):
        print(f"  {count:4d}  {kind}")
    print(f"  parked: {len(parked)}; reasons {dict(sorted(reasons.items()))}")
    print(f"  handler failures during the run: {failures:g}")
    for queue, message in known:
        print(f"  KNOWN: {queue} parked {message.body[:16]!r}... without a reason: ")
        print(f"      {exhausted_known(queue, message.body)}")
    assert not +missing, f"{sum(missing.values())} refused messages never reached a DLQ: " + str(
        [(q, body[:120]) for q, body in list(missing)[:10]]
    )
    assert not without_reason, f"parked without a reason (deliveries exhausted): {without_reason}"
    assert_all_alive(hostile_system)
