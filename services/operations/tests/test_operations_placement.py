"""Placing partitions on replicas (rendezvous hashing), finding a message's agent, and an
agent's slots served in arrival order."""

from __future__ import annotations

import asyncio

import pytest

from vsm.contract.control import allocation_key
from vsm.contract.coordination import note_key
from vsm.contract.errors import Unprocessable
from vsm.contract.operations import audit_key, command_key, partition_of
from vsm.operations.allocation import Slots
from vsm.operations.host import addressee
from vsm.operations.placement import Placement

PARTITIONS = 16


def owners(placement: Placement, now: float = 0.0) -> dict[int, str]:
    return {p: placement.owner(p, now) for p in range(PARTITIONS)}


def test_alone_a_replica_owns_every_partition() -> None:
    alone = Placement("op-a", PARTITIONS, ttl_s=10)
    assert alone.owned(0.0) == set(range(PARTITIONS))


def test_replicas_agree_and_spread_and_a_joiner_takes_only_its_share() -> None:
    a, b = Placement("op-a", PARTITIONS, 10), Placement("op-b", PARTITIONS, 10)
    assert a.heard("op-b", ready=True, now=0.0)
    assert b.heard("op-a", ready=True, now=0.0)
    two = owners(a)
    assert two == owners(b)
    assert a.owned(0.0) | b.owned(0.0) == set(range(PARTITIONS))
    assert not a.owned(0.0) & b.owned(0.0)
    assert a.owned(0.0)
    assert b.owned(0.0)

    a.heard("op-c", ready=True, now=1.0)
    three = owners(a, 1.0)
    moved = {p for p in range(PARTITIONS) if two[p] != three[p]}
    assert moved
    assert all(three[p] == "op-c" for p in moved)


def test_a_silent_or_unready_replica_is_not_live() -> None:
    a = Placement("op-a", PARTITIONS, ttl_s=10)
    assert not a.heard("op-b", ready=False, now=0.0)
    assert a.live(0.0) == ["op-a"]
    a.heard("op-b", ready=True, now=0.0)
    assert a.live(5.0) == ["op-a", "op-b"]
    assert a.live(11.0) == ["op-a"]
    assert a.seen == {}  # forgotten once silent


def test_the_partition_of_an_agent_is_stable() -> None:
    assert partition_of("worker-0a1b2c3d4e5f", PARTITIONS) == partition_of(
        "worker-0a1b2c3d4e5f", PARTITIONS
    )
    spread = {partition_of(f"worker-{i:012x}", PARTITIONS) for i in range(200)}
    assert spread == set(range(PARTITIONS))


def test_every_route_names_its_agent() -> None:
    assert addressee(command_key("worker", "worker-1", "process_data")) == "worker-1"
    assert addressee(audit_key("worker-1")) == "worker-1"
    assert addressee(allocation_key("worker-1")) == "worker-1"
    assert addressee(note_key("worker-1")) == "worker-1"
    assert addressee("allocation.worker-1") == "worker-1"  # queued by an earlier version
    assert addressee("s1.worker-1") == "worker-1"
    with pytest.raises(Unprocessable):
        addressee("nothing")


async def test_slots_are_served_in_arrival_order_even_to_a_late_comer() -> None:
    slots = Slots(1)
    order: list[int] = []

    async def command(index: int) -> None:
        async with slots:
            order.append(index)
            await asyncio.sleep(0)

    first = [asyncio.create_task(command(i)) for i in range(5)]
    await asyncio.sleep(0)  # all five wait for the one slot (the first holds it)
    late = asyncio.create_task(command(5))
    await asyncio.gather(*first, late)
    assert order == [0, 1, 2, 3, 4, 5]
    assert slots.taken == 0


async def test_a_slot_waiter_cancelled_leaks_no_slot() -> None:
    slots = Slots(1)
    await slots.__aenter__()
    waiter = asyncio.create_task(slots.__aenter__())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    await slots.__aexit__()
    assert slots.taken == 0
    async with slots:
        assert slots.taken == 1


def test_a_replica_is_fresh_only_while_its_heartbeats_keep_coming() -> None:
    a = Placement("op-a", PARTITIONS, ttl_s=10, fresh_s=1)
    a.heard("op-b", ready=True, now=0.0)
    assert a.fresh("op-b", 0.5)
    assert not a.fresh("op-b", 2.0)  # maybe dead: nothing is handed to it
    assert "op-b" in a.live(2.0)  # yet it keeps its partitions until its time-to-live ends
    assert a.fresh("op-a", 99.0)
