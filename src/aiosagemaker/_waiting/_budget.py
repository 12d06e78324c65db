"""The S3 request budget of one predictor: a token bucket whose rate adapts (AIMD).

Every request the waiting engine makes to *find* results (LIST pages, probing GETs) takes a
token first. The rate starts at the configured ceiling; each SlowDown / 503 halves it (at most
once per :attr:`RequestBudget.cooldown`, so one burst of throttled requests counts once), and
every second without throttling adds :attr:`RequestBudget.increase` back, up to the ceiling.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio

from ._clock import Clock, as_clock

__all__ = ["DEFAULT_S3_REQUESTS_PER_SECOND", "RequestBudget"]

DEFAULT_S3_REQUESTS_PER_SECOND = 200.0
"""Default ceiling: under 4 % of the ~5,500 GET/LIST per second S3 serves per prefix."""
_ROUNDING = 1e-9
"""Token shortfall ignored: a sleep computed to refill one token may leave 0.999...9."""


class RequestBudget:
    """Token bucket with additive-increase / multiplicative-decrease of its rate.

    Args:
        rate: Ceiling in requests per second.
        minimum: The rate never drops below this.
        burst_seconds: Tokens that may accumulate, in seconds of the current rate.
        clock: A :class:`~._clock.Clock` or a monotonic time function (tests pass a fake
            one); waiting for a token sleeps on it.
    """

    def __init__(
        self,
        rate: float = DEFAULT_S3_REQUESTS_PER_SECOND,
        *,
        minimum: float = 1.0,
        burst_seconds: float = 0.25,
        clock: Clock | Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = float(rate)
        self.minimum = min(float(minimum), self.ceiling)
        self.rate = self.ceiling
        self.increase = max(1.0, self.ceiling / 20)
        self.cooldown = 1.0
        self.burst_seconds = burst_seconds
        self.time = as_clock(clock)
        self.clock = self.time.now
        self.throttles = 0
        self.granted = 0
        self._tokens = self._capacity()
        self._stamp = self.clock()
        self._last_cut = float("-inf")
        self._lock = anyio.Lock()

    def _capacity(self) -> float:
        return max(1.0, self.rate * self.burst_seconds)

    def _refill(self) -> None:
        now = self.clock()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        if now - self._last_cut >= self.cooldown:
            self.rate = min(self.ceiling, self.rate + self.increase * elapsed)
        self._tokens = min(self._capacity(), self._tokens + elapsed * self.rate)

    def try_take(self) -> bool:
        """Take a token if one is there now."""
        self._refill()
        if self._tokens >= 1.0 - _ROUNDING:  # a refill to exactly 1.0 may round below it
            self._tokens -= 1.0
            self.granted += 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a token (FIFO among waiters: one sleeper at a time holds the lock)."""
        if self.try_take():
            return
        async with self._lock:
            while not self.try_take():
                await self.time.sleep_until(self.clock() + (1.0 - self._tokens) / self.rate)

    def charge(self, requests: int = 1) -> None:
        """Count requests made without a token (GETs of listed keys that were not there).

        The tokens may go below zero: the next detection requests wait until the debt is
        paid, so such requests come out of the same per-second budget.
        """
        self._refill()
        self._tokens -= requests
        self.granted += requests

    def throttled(self) -> None:
        """S3 said SlowDown / 503: halve the rate (once per cooldown)."""
        self.throttles += 1
        now = self.clock()
        if now - self._last_cut < self.cooldown:
            return
        self._refill()
        self._last_cut = now
        self.rate = max(self.minimum, self.rate / 2)
        self._tokens = min(self._tokens, self._capacity())
