"""RequestSlots: the FIFO bound on InvokeEndpointAsync requests in flight."""

from __future__ import annotations

import asyncio

import pytest

from aiosagemaker._slots import RequestSlots
from helpers import until

pytestmark = pytest.mark.anyio


async def test_waiters_get_their_slot_in_arrival_order() -> None:
    slots = RequestSlots(1)
    await slots.acquire()
    order: list[int] = []

    async def take(number: int) -> None:
        await slots.acquire()
        order.append(number)
        slots.release()

    tasks = [asyncio.create_task(take(number)) for number in range(5)]
    await until(lambda: slots.waiting == 5)
    assert slots.borrowed == 1
    slots.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert (slots.borrowed, slots.waiting) == (0, 0)


async def test_a_cancelled_waiter_neither_keeps_nor_loses_a_slot() -> None:
    slots = RequestSlots(1)
    await slots.acquire()
    queued = asyncio.create_task(slots.acquire())
    handed = asyncio.create_task(slots.acquire())
    last = asyncio.create_task(slots.acquire())
    await until(lambda: slots.waiting == 3)
    queued.cancel()  # cancelled while queued: skipped when its turn comes
    slots.release()  # goes to `handed`, which is cancelled before it runs: passed on
    handed.cancel()
    await last
    for task in (queued, handed):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert (slots.borrowed, slots.waiting) == (1, 0)
    slots.release()
    assert slots.borrowed == 0


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        RequestSlots(0)
