"""Leave nothing behind: delete every exchange and queue a test namespace may have declared."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable

import aio_pika

from vsm.contract import operations, telegram, topology
from vsm.kit.addresses import BrokerAddresses
from vsm.kit.names import Namespace

FIXED_QUEUES = (
    *topology.SHARED_QUEUES,
    *(operations.partition_queue(k) for k in range(16)),  # S1_PARTITIONS' default
    # The partitions of the types the tests' agent hosts offer (up to 8 per type)
    *(
        operations.pool_queue(agent_type, k)
        for agent_type in ("tally", "beacon", "stock_keeper", "greeter")
        for k in range(8)
    ),
    operations.REGISTRY_LOG,
    telegram.TELEGRAM_COMMANDS,
    topology.SYSTEM3_JOURNAL,
    topology.SYSTEM2_JOURNAL,
    topology.SYSTEM4_JOURNAL,
    topology.SYSTEM5_JOURNAL,
)
FIXED_EXCHANGES = (*topology.EXCHANGES, operations.S1_REGISTRY, telegram.TELEGRAM)


async def exchange_exists(connection: aio_pika.abc.AbstractConnection, name: str) -> bool:
    """Whether the broker holds the exchange `name` (the broker's name), asked on a channel
    of its own (the broker closes it when there is none)."""
    channel = await connection.channel()
    try:
        await channel.get_exchange(name, ensure=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return False
    await channel.close()
    return True


def new_namespace() -> str:
    """A namespace no other test uses: everything a test declares goes under it."""
    return f"t{secrets.token_hex(4)}"


def canonical_queue_names(extra: Iterable[topology.Queue] = ()) -> list[str]:
    queues = [*FIXED_QUEUES, *extra]
    return [name for q in queues for name in (q.name, q.dead_letter_queue)]


async def delete_namespace(
    url: str,
    prefix: str,
    queues: Iterable[str] = (),
    exchanges: Iterable[str] = (),
) -> None:
    """Delete the contract's queues and exchanges (and any extra names) under `prefix`."""
    ns = Namespace(prefix)
    connection = await BrokerAddresses(url).connect()
    async with connection:
        channel = await connection.channel()
        for name in [*canonical_queue_names(), *queues]:
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(ns.name(name))
        for name in [*(e.name for e in FIXED_EXCHANGES), *exchanges]:
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.exchange_delete(ns.name(name))
