"""Helpers for the message-security tests: keys, signed envelopes, raw publishes, DLQ reads."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from scripts.localrun import LocalSystem
from tests.support.system import launch
from vsm.contract.envelope import Envelope
from vsm.contract.health import HealthReport
from vsm.contract.message import Message
from vsm.kit.names import Namespace
from vsm.kit.signing import Keyring, parse_keyring


def secret(seed: bytes) -> str:
    return base64.b64encode(seed * (32 // len(seed))).decode()


KEYS = f"k1:{secret(b'one-')},k0:{secret(b'zero')}"
"""What the services under test share: k1 signs, k0 (the previous key) still verifies."""


def ring(text: str) -> Keyring:
    keyring = parse_keyring(text)
    assert keyring is not None
    return keyring


SERVICE_RING = ring(KEYS)
OLD_RING = ring(f"k0:{secret(b'zero')}")
STRANGER_RING = ring(f"k9:{secret(b'nine')}")
IMPOSTOR_RING = ring(f"k1:{secret(b'evil')}")  # a known key id with the wrong secret


def report(instance: str = "test-1", **changes: Any) -> Envelope[HealthReport]:
    body = HealthReport(
        service="probe",
        instance=instance,
        role="other",
        state="up",
        interval_s=1.0,
        started_at=datetime.now(UTC),
    )
    envelope = Envelope.wrap(body, source="vsm/test")
    return envelope.model_copy(update=changes) if changes else envelope


def aged(envelope: Envelope[Any], seconds: float) -> Envelope[Any]:
    """The envelope dated `seconds` ago (negative: in the future)."""
    return envelope.model_copy(update={"time": datetime.now(UTC) - timedelta(seconds=seconds)})


def signed(
    envelope: Envelope[Message], keyring: Keyring | None, exchange: str, routing_key: str
) -> aio_pika.Message:
    """The envelope as a service would publish it to `exchange` with `routing_key` (the
    broker's names), signed with `keyring` (None: unsigned)."""
    body = envelope.model_dump_json().encode()
    headers: dict[str, Any] = keyring.sign(body, exchange, routing_key) if keyring else {}
    return aio_pika.Message(
        body, headers=headers, message_id=envelope.id, content_type="application/json"
    )


def copy(message: AbstractIncomingMessage | aio_pika.Message, **headers: Any) -> aio_pika.Message:
    """The same bytes and headers again (a replay), with `headers` added."""
    return aio_pika.Message(
        message.body,
        headers={**(message.headers or {}), **headers},
        message_id=message.message_id,
        content_type="application/json",
    )


def flip(message: aio_pika.Message, needle: bytes, offset: int = 0) -> aio_pika.Message:
    """One byte of the body changed (byte `offset` of `needle`, a letter whose case flips):
    still valid JSON and a valid envelope, with the original signature."""
    position = message.body.index(needle) + offset
    assert chr(message.body[position]).isalpha()
    body = bytearray(message.body)
    body[position] ^= 0x20
    return aio_pika.Message(
        bytes(body),
        headers=dict(message.headers or {}),
        message_id=message.message_id,
        content_type="application/json",
    )


async def publish(
    channel: AbstractChannel,
    namespace: Namespace,
    exchange: str,
    message: aio_pika.Message,
    routing_key: str = "",
) -> None:
    target = await channel.get_exchange(namespace.name(exchange))
    await target.publish(message, routing_key)


async def dead_letters(
    channel: AbstractChannel, namespace: Namespace, queue: str, count: int, timeout: float = 10.0
) -> list[AbstractIncomingMessage]:
    """The next `count` messages parked on `queue`'s dead-letter queue (acked)."""
    target = await channel.get_queue(namespace.name(f"{queue}.dlq"), ensure=False)
    parked: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(timeout):
        while len(parked) < count:
            message = await target.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
            else:
                parked.append(message)
    return parked


async def parked_count(channel: AbstractChannel, namespace: Namespace, queue: str) -> int:
    declared = await channel.declare_queue(
        namespace.name(f"{queue}.dlq"), passive=True, durable=True
    )
    return int(declared.declaration_result.message_count or 0)


def launch_system(
    amqp_url: str, log_dir: Path, *, ready_within_s: float = 240, **env: str
) -> LocalSystem:
    """The seven services as the integration tests start them (see tests/integration), with
    more patience: on a busy machine the interpreters alone can take a minute to start."""
    return launch(amqp_url, log_dir, ready_within_s=ready_within_s, **env)
