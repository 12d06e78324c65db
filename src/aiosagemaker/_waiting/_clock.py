"""The engine's clock: what time it is, and every wait of the engine on the time.

The waiting engine and the request budget read the time and wait for it only through a
:class:`Clock`, so tests can run them on virtual time (a fake clock that jumps to the next
deadline when everything waits on it) and count requests exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "MonotonicClock", "as_clock"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic seconds and the waits on them."""

    def now(self) -> float:
        """The current reading (seconds, monotonic)."""
        ...

    def move_on_at(self, deadline: float) -> AbstractContextManager[anyio.CancelScope]:
        """A cancel scope that ends its block when the clock reaches ``deadline``."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return when the clock reads ``deadline`` or later."""
        ...


class MonotonicClock:
    """The real clock: ``now`` (``time.monotonic`` unless told) and anyio's timeouts."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()

    def move_on_at(self, deadline: float) -> AbstractContextManager[anyio.CancelScope]:
        return anyio.move_on_after(max(0.0, deadline - self._now()))

    async def sleep_until(self, deadline: float) -> None:
        await anyio.sleep(max(0.0, deadline - self._now()))


def as_clock(clock: Clock | Callable[[], float]) -> Clock:
    """``clock`` itself, or a plain time function (the older ``clock=``) as a real clock."""
    if isinstance(clock, Clock):
        return clock
    return MonotonicClock(clock)
