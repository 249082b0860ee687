"""Message security in the kit, on a real broker: the kit's own Runtime with signing keys.

Every consumed message passes the signature check and then the replay checks before
anything reads it; a refused one is parked on the queue's DLQ with its reason, logged as a
`security_event` and counted; a retry (broker redelivery) is not a replay.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from faststream.rabbit.annotations import RabbitMessage

from tests.security.signed import (
    IMPOSTOR_RING,
    KEYS,
    OLD_RING,
    SERVICE_RING,
    STRANGER_RING,
    aged,
    copy,
    dead_letters,
    flip,
    parked_count,
    publish,
    report,
    signed,
)
from tests.support.cleanup import delete_namespace, new_namespace
from tests.support.polling import eventually
from vsm.contract import topology
from vsm.contract.envelope import Envelope
from vsm.contract.health import HealthReport, Ping, Pong
from vsm.kit.bus import RequestFailed
from vsm.kit.deadletter import REASON_HEADER
from vsm.kit.names import Namespace
from vsm.kit.runtime import Runtime
from vsm.kit.settings import ServiceSettings
from vsm.kit.signing import SIGNATURE_HEADER, Keyring

pytestmark = pytest.mark.integration

WORK = topology.Queue(
    "vsm.sectest.work",
    (topology.Binding(topology.CONTROL, "sectest.work"),),
    "Work for the security test's service.",
)
KEY = "sectest.work"
SERVICES = ("sectest", "sectest-peer", "sectest-keyless")


class Events(logging.Handler):
    """The `security_event` records the kit logs (structlog through the standard library)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict) and record.msg.get("event") == "security_event":
            self.events.append(record.msg)

    def reasons(self) -> list[str]:
        return [event["reason"] for event in self.events]


@dataclass
class Service:
    runtime: Runtime
    handled: list[str] = field(default_factory=list)
    failed_once: set[str] = field(default_factory=set)

    def refusals(self, reason: str) -> float:
        value = self.runtime.telemetry.registry.get_sample_value(
            "vsm_security_refusals_total",
            {"service": self.runtime.service, "queue": name(WORK.name), "reason": reason},
        )
        return value or 0.0


NAMESPACE = new_namespace()


def name(canonical: str) -> str:
    return Namespace(NAMESPACE).name(canonical)


def build(service: str, amqp_url: str, keys: str) -> Service:
    """A runtime of the kit; `sectest` alone also consumes the work queue."""
    settings = ServiceSettings(
        amqp_url=amqp_url,
        vsm_namespace=NAMESPACE,
        vsm_signing_keys=keys,  # type: ignore[arg-type]
        instance_id=f"{service}-1",
        health_interval=5.0,
        log_format="json",
    )
    built = Service(Runtime(service, settings))
    if service != "sectest":
        return built

    @built.runtime.bus.handle(WORK, HealthReport)
    async def on_report(envelope: Envelope[HealthReport], message: RabbitMessage) -> None:
        first = envelope.id not in built.failed_once
        built.failed_once.add(envelope.id)
        if envelope.subject == "fail-once" and first:
            raise RuntimeError("the first attempt fails")
        built.handled.append(envelope.id)
        if envelope.subject == "lose-the-ack" and first:
            # A bogus ack makes the broker close the channel: the real ack that follows is
            # lost, and the broker redelivers the message once the channel is back.
            channel = message.raw_message.channel
            await channel.basic_ack(delivery_tag=message.raw_message.delivery_tag + 10_000)

    return built


@pytest.fixture(scope="module")
async def services(amqp_url: str) -> AsyncIterator[dict[str, Service]]:
    keys = {"sectest": KEYS, "sectest-peer": KEYS, "sectest-keyless": ""}
    built = {service: build(service, amqp_url, keys[service]) for service in SERVICES}
    async with contextlib.AsyncExitStack() as stack:
        for service in built.values():
            await stack.enter_async_context(service.runtime.lifespan(service.runtime.http_app()))
        yield built
    await delete_namespace(
        amqp_url,
        NAMESPACE,
        queues=[
            q
            for queue in (WORK, *(topology.requests_queue(s) for s in SERVICES))
            for q in (queue.name, queue.dead_letter_queue)
        ],
    )


@pytest.fixture
def service(services: dict[str, Service]) -> Service:
    return services["sectest"]


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        yield await connection.channel()


@pytest.fixture
def events() -> Iterator[Events]:
    handler = Events()
    logger = logging.getLogger("vsm.security")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def work(envelope: Envelope[Any], keyring: Keyring | None = SERVICE_RING) -> aio_pika.Message:
    """Signed for the work queue's route (`KEY` on `vsm.control`)."""
    return signed(envelope, keyring, name(topology.CONTROL.name), KEY)


async def send(channel: AbstractChannel, message: aio_pika.Message) -> None:
    await publish(channel, Namespace(NAMESPACE), topology.CONTROL.name, message, KEY)


async def parked(channel: AbstractChannel, count: int = 1) -> list[AbstractIncomingMessage]:
    return await dead_letters(channel, Namespace(NAMESPACE), WORK.name, count)


async def handled(service: Service, *ids: str) -> None:
    async def done() -> bool:
        return set(ids) <= set(service.handled)

    await eventually(done, timeout=10.0, interval=0.05, what=f"{ids} handled")


async def test_a_signed_message_is_handled_once_and_its_replay_is_parked(
    service: Service, channel: AbstractChannel, events: Events
) -> None:
    envelope = report()
    original = work(envelope)
    before = service.refusals("replayed")

    await send(channel, original)
    await handled(service, envelope.id)
    await send(channel, copy(original))
    [replay] = await parked(channel)

    assert replay.headers[REASON_HEADER] == "replayed"
    assert replay.body == original.body
    assert service.handled.count(envelope.id) == 1
    assert service.refusals("replayed") == before + 1
    assert events.reasons() == ["replayed"]
    assert events.events[0]["message_id"] == envelope.id
    assert events.events[0]["key_id"] == "k1"


async def test_a_flipped_byte_is_parked_as_bad_signature_with_its_original_signature(
    service: Service, channel: AbstractChannel, events: Events
) -> None:
    envelope = report(instance="tamper-me")
    original = work(envelope)
    tampered = flip(original, b"tamper-me")  # -> "Tamper-me": a valid envelope, but not signed

    await send(channel, tampered)
    [bad] = await parked(channel)

    assert bad.headers[REASON_HEADER] == "bad_signature"
    assert bad.body == tampered.body
    # The dead letter is not signed again by the service that parked it.
    assert bad.headers[SIGNATURE_HEADER] == original.headers[SIGNATURE_HEADER]
    assert envelope.id not in service.handled
    assert events.reasons() == ["bad_signature"]
    await send(channel, original)  # the genuine one still goes through
    await handled(service, envelope.id)


@pytest.mark.parametrize(
    ("keyring", "why"),
    [
        (None, "not signed"),
        (STRANGER_RING, "unknown key id 'k9'"),
        (IMPOSTOR_RING, "does not match"),
    ],
    ids=["unsigned", "unknown-kid", "wrong-secret"],
)
async def test_unsigned_and_wrongly_signed_messages_are_parked(
    service: Service, channel: AbstractChannel, keyring: Any, why: str
) -> None:
    envelope = report()

    await send(channel, work(envelope, keyring))
    [bad] = await parked(channel)

    assert bad.headers[REASON_HEADER] == "bad_signature"
    assert why in bad.headers["x-vsm-dead-letter-detail"]
    assert envelope.id not in service.handled


async def test_a_message_signed_for_another_route_is_parked(
    service: Service, channel: AbstractChannel
) -> None:
    """The signature binds the exchange and routing key: a copy published elsewhere (here
    straight to the work queue, or under another key bound to it) is refused."""
    elsewhere = report()
    other_key = report()
    direct = signed(elsewhere, SERVICE_RING, name(topology.CONTROL.name), KEY)
    rebound = signed(other_key, SERVICE_RING, name(topology.CONTROL.name), "sectest.other")

    await channel.default_exchange.publish(direct, routing_key=name(WORK.name))
    await send(channel, rebound)
    parked_now = await parked(channel, 2)

    assert {m.headers[REASON_HEADER] for m in parked_now} == {"bad_signature"}
    assert all("another destination" in m.headers["x-vsm-dead-letter-detail"] for m in parked_now)
    assert elsewhere.id not in service.handled
    assert other_key.id not in service.handled


async def test_the_previous_key_still_verifies(service: Service, channel: AbstractChannel) -> None:
    envelope = report()

    await send(channel, work(envelope, OLD_RING))

    await handled(service, envelope.id)


@pytest.mark.parametrize(
    ("age_s", "reason"),
    [(301.0, "stale"), (3600.0, "stale"), (-31.0, "from_future"), (-600.0, "from_future")],
)
async def test_messages_outside_the_window_are_parked(
    service: Service, channel: AbstractChannel, age_s: float, reason: str
) -> None:
    envelope = aged(report(), age_s)

    await send(channel, work(envelope))
    [bad] = await parked(channel)

    assert bad.headers[REASON_HEADER] == reason
    assert envelope.id not in service.handled


async def test_inside_the_window_and_the_skew_a_message_is_handled(
    service: Service, channel: AbstractChannel
) -> None:
    late, early = aged(report(), 250.0), aged(report(), -20.0)

    await send(channel, work(late))
    await send(channel, work(early))

    await handled(service, late.id, early.id)


async def test_a_retry_after_a_failure_is_not_a_replay(
    service: Service, channel: AbstractChannel
) -> None:
    envelope = report(subject="fail-once")
    original = work(envelope)

    await send(channel, original)
    await handled(service, envelope.id)  # nacked once, redelivered

    assert envelope.id in service.failed_once
    assert service.handled.count(envelope.id) == 1
    assert await parked_count(channel, Namespace(NAMESPACE), WORK.name) == 0
    await send(channel, copy(original))
    [replay] = await parked(channel)
    assert replay.headers[REASON_HEADER] == "replayed"


async def test_a_redelivery_after_a_lost_ack_is_not_a_replay(
    service: Service, channel: AbstractChannel
) -> None:
    """The id was recorded (the handler returned) but the ack never reached the broker."""
    envelope = report(subject="lose-the-ack")

    await send(channel, work(envelope))

    async def twice() -> bool:
        return service.handled.count(envelope.id) == 2

    await eventually(twice, timeout=20.0, interval=0.1, what="the redelivery handled")
    assert await parked_count(channel, Namespace(NAMESPACE), WORK.name) == 0


async def test_a_forged_delivery_count_does_not_make_a_replay_a_retry(
    service: Service, channel: AbstractChannel
) -> None:
    """Only the broker sets `redelivered`; a header is the publisher's to write."""
    envelope = report()
    original = work(envelope)
    await send(channel, original)
    await handled(service, envelope.id)

    await send(channel, copy(original, **{"x-delivery-count": 1}))
    [replay] = await parked(channel)

    assert replay.headers[REASON_HEADER] == "replayed"
    assert service.handled.count(envelope.id) == 1


async def test_services_sharing_keys_talk_and_a_keyless_one_is_refused(
    services: dict[str, Service],
) -> None:
    keyed, peer, keyless = (services[s].runtime.bus for s in SERVICES)

    pong = await keyed.query("sectest-peer", "ping", Ping(), Pong)
    assert pong.service == "sectest-peer"

    with pytest.raises(RequestFailed) as unsigned_request:
        await keyless.request("sectest", "ping", Ping())
    assert unsigned_request.value.reply.code == "bad_signature"

    with pytest.raises(RequestFailed) as unsigned_reply:
        await keyed.request("sectest-keyless", "ping", Ping())
    assert unsigned_reply.value.reply.code == "bad_signature"
    assert (await peer.query("sectest", "ping", Ping(), Pong)).service == "sectest"


async def test_after_all_this_every_service_still_answers(services: dict[str, Service]) -> None:
    for service in services.values():
        assert await service.runtime.readiness() == {"broker": True, "topology": True}
