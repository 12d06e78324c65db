"""When each check of one wait is due: a :class:`WaiterConfig` turned into times.

The first check is at the start; then one check after each of the config's delays. With a
``timeout`` the check that would come after it is moved onto it, so a result written just
before the deadline is found, and no check is scheduled past it. With a ``timeout`` the
caller's wait is cut :data:`FINAL_CHECK_GRACE` seconds after it at the latest, whatever a
running S3 request is doing: ``timeout`` is a hard limit. Without one (attempts only, as in
the SDK) the wait ends when the last check has answered, or :data:`LAST_CHECK_ALLOWANCE`
seconds after it was due.
"""

from __future__ import annotations

import random

from .._config import WaiterConfig

__all__ = ["FINAL_CHECK_GRACE", "LAST_CHECK_ALLOWANCE", "Schedule"]

FINAL_CHECK_GRACE = 0.5
"""Seconds past a ``timeout`` the last check may take before the wait ends without it."""
LAST_CHECK_ALLOWANCE = 10.5
"""Seconds the last check of a wait without ``timeout`` may take (the engine abandons a check
after 10 s and retries it, so a hanging S3 still ends the wait)."""


class Schedule:
    """The check times of one wait, computed lazily (jitter drawn once per wait).

    Args:
        config: The waiter configuration.
        start: The clock reading at which the wait starts (the first check's time).
        rng: Source of jitter.
        first_check: False skips the check at the start (notification mode: the notification
            is the first look; S3 is the safety net).
        hard_limit: Whether the caller's wait is cut :data:`FINAL_CHECK_GRACE` after the last
            check (a ``timeout``) or given :data:`LAST_CHECK_ALLOWANCE` for its answer
            (attempts only). Defaults to whether ``config`` has a ``timeout``; a safety-net
            schedule derived from an attempts-only config keeps the allowance.
    """

    __slots__ = ("_delays", "_done", "_times", "allowance", "deadline", "last", "start")

    def __init__(
        self,
        config: WaiterConfig,
        start: float,
        rng: random.Random,
        *,
        first_check: bool = True,
        hard_limit: bool | None = None,
    ) -> None:
        if hard_limit is None:
            hard_limit = config.timeout is not None
        self.allowance = FINAL_CHECK_GRACE if hard_limit else LAST_CHECK_ALLOWANCE
        self.start = start
        self.deadline = None if config.timeout is None else start + float(config.timeout)
        seed = rng.random()
        self._delays = config.delays(random.Random(seed))
        self._times: list[float] = [start] if first_check else []
        self._done = False
        self.last = self._find_last(config, seed)

    def _find_last(self, config: WaiterConfig, seed: float) -> float:
        """The time of the last check (the config's delays summed, capped by its timeout)."""
        if config.max_attempts is None:
            assert self.deadline is not None
            return self.deadline
        total = self.start
        for delay in config.delays(random.Random(seed)):
            total += delay
            if self.deadline is not None and total >= self.deadline:
                return self.deadline
        return total

    @property
    def hard_deadline(self) -> float:
        """When the caller's wait ends at the latest."""
        return self.last + self.allowance

    def time(self, index: int) -> float | None:
        """The time of check ``index`` (0-based), or None when there is no such check."""
        while len(self._times) <= index and not self._done:
            previous = self._times[-1] if self._times else self.start
            delay = next(self._delays, None)
            if delay is None:
                self._done = True
                break
            due = previous + delay
            if self.deadline is not None and due >= self.deadline:
                due = self.deadline
                self._done = True
            if self._times and due <= self._times[-1]:
                self._done = True
                break
            self._times.append(due)
        return self._times[index] if index < len(self._times) else None

    def is_last(self, index: int) -> bool:
        """Whether check ``index`` is the final one."""
        return self.time(index) is not None and self.time(index + 1) is None
