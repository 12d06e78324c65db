"""RequestSlots: a first-come-first-served bound on requests in flight, light while queued.

10,000 ``predict_async`` calls may queue at once for the predictor's InvokeEndpointAsync
slots. ``anyio.CapacityLimiter`` keeps, per queued task, an ``asyncio.Event`` with its deque,
a dict entry, the ``WouldBlock`` exception it caught and its traceback, and two more
coroutine frames; a queued request here holds one future and nothing else.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["RequestSlots"]


class RequestSlots:
    """At most ``total`` holders at once (:meth:`acquire`, then :meth:`release`); the others
    wait in arrival order.

    A waiter cancelled after its slot was handed to it passes the slot on; one cancelled
    before stays in the queue as a done future, skipped when its turn comes. Asyncio only,
    as the rest of the library.
    """

    __slots__ = ("_free", "_queue", "total")

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"RequestSlots needs at least one slot, got {total}")
        self.total = total
        self._free = total
        self._queue: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Tasks waiting for a slot (cancelled ones not yet skipped included)."""
        return len(self._queue)

    @property
    def borrowed(self) -> int:
        """Slots held now."""
        return self.total - self._free

    async def acquire(self) -> None:
        """Take a slot, waiting for one in arrival order (give it back with :meth:`release`)."""
        if self._free > 0:  # when a slot is free nobody is queued: release hands it on
            self._free -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():  # handed over, then cancelled: pass on
                self.release()
            else:
                turn.cancel()  # skipped when its turn comes
            raise

    def release(self) -> None:
        """Give the slot to the first live waiter, or free it."""
        queue = self._queue
        while queue:
            turn = queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1
