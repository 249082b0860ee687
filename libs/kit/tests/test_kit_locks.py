"""`KeyedLocks`: one holder per key at a time, and nothing kept once nobody holds or waits."""

from __future__ import annotations

import asyncio

from vsm.kit.locks import KeyedLocks


async def test_a_key_s_holders_take_turns_and_the_lock_goes_with_the_last_of_them() -> None:
    locks, inside, most = KeyedLocks(), 0, 0

    async def hold(key: str) -> None:
        nonlocal inside, most
        async with locks.hold(key):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            assert len(locks) == 1  # the waiters keep it while the first holds it
            inside -= 1

    await asyncio.gather(*(hold("a") for _ in range(5)))
    assert most == 1
    assert len(locks) == 0


async def test_different_keys_do_not_wait_for_each_other_and_leave_nothing_behind() -> None:
    locks = KeyedLocks()
    entered = asyncio.Event()

    async def first() -> None:
        async with locks.hold("a"):
            entered.set()
            await asyncio.sleep(0.05)

    task = asyncio.create_task(first())
    await entered.wait()
    async with locks.hold("b"):  # does not wait for "a"
        assert len(locks) == 2
    await task
    for n in range(1000):
        async with locks.hold(f"made-up-{n}"):
            pass
    assert len(locks) == 0


async def test_a_holder_that_fails_still_lets_the_next_in() -> None:
    locks = KeyedLocks()
    try:
        async with locks.hold("a"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    async with asyncio.timeout(1):
        async with locks.hold("a"):
            pass
    assert len(locks) == 0
