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


_MASK = (1 << 64) - 1


def _unit(seed: int, index: int) -> float:
    """A uniform draw in [0, 1) for check ``index`` of the wait seeded ``seed`` (splitmix64).

    Stateless, so a wait holds one integer for its jitter instead of a generator's state.
    """
    x = (seed + (index + 1) * 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return ((x ^ (x >> 31)) >> 11) / float(1 << 53)


class Schedule:
    """The check times of one wait, computed lazily (jitter drawn once per wait).

    Only the times from the earliest check still needed (see :meth:`release`) are kept, so a
    wait's memory does not grow with the checks it has made.

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

    __slots__ = (
        "_config",
        "_done",
        "_first_check",
        "_next_delay",
        "_offset",
        "_seed",
        "_sleeps",
        "_times",
        "allowance",
        "deadline",
        "hard_limit",
        "last",
        "start",
    )

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
        self.hard_limit = hard_limit
        """Whether the wait ends by :attr:`hard_deadline` whatever it is doing (a ``timeout``)."""
        self.allowance = FINAL_CHECK_GRACE if hard_limit else LAST_CHECK_ALLOWANCE
        self.start = start
        self.deadline = None if config.timeout is None else start + float(config.timeout)
        self._config = config
        self._seed = rng.getrandbits(64) if config.jitter else 0
        self._next_delay = config._first_delay()
        self._sleeps = 0
        self._offset = 0
        self._times: list[float] = [start] if first_check else []
        self._first_check = first_check
        self._done = False
        self.last = self._find_last()

    def _delay(self, index: int, raw: float) -> float:
        """The jittered sleep before check ``index + 1`` (``raw`` without jitter)."""
        jitter = self._config.jitter
        return raw if not jitter else raw * (1 - jitter * _unit(self._seed, index))

    def _find_last(self) -> float:
        """The time of the last check (the config's delays summed, capped by its timeout)."""
        config = self._config
        if config.max_attempts is None:
            assert self.deadline is not None
            return self.deadline
        total, raw = self.start, self._next_delay
        for index in range(config.max_attempts - 1):
            total += self._delay(index, raw)
            if self.deadline is not None and total >= self.deadline:
                return self.deadline
            raw = config._grown(raw)
        return total

    def admit(self, start: float) -> float | None:
        """Let a wait that starts at ``start`` (not before this schedule's start, before its
        first check was taken) be checked on this schedule; return its own hard deadline.

        With a ``timeout`` the deadline moves to ``start``'s, so the last check comes no
        earlier than the joining wait's own. None: the times near the old deadline were
        computed already; the wait needs a schedule of its own.
        """
        config = self._config
        if config.timeout is None:
            return self.hard_deadline
        deadline = start + float(config.timeout)
        if self.deadline is not None and deadline > self.deadline:
            if self._done:
                return None
            self.deadline = deadline
            self.last = self._find_last()
        own_last = min(self.last, deadline)
        return own_last + self.allowance

    def copy(self) -> Schedule:
        """The same check times, as a schedule of its own (for a wait leaving its cohort)."""
        twin = Schedule.__new__(Schedule)
        twin._config = self._config
        twin.hard_limit = self.hard_limit
        twin.allowance = self.allowance
        twin.start = self.start
        twin.deadline = self.deadline
        twin._seed = self._seed
        twin._next_delay = self._config._first_delay()
        twin._sleeps = 0
        twin._offset = 0
        twin._times = [self.start] if self._first_check else []
        twin._first_check = self._first_check
        twin._done = False
        twin.last = self.last
        return twin

    @property
    def hard_deadline(self) -> float:
        """When the caller's wait ends at the latest."""
        return self.last + self.allowance

    def time(self, index: int) -> float | None:
        """The time of check ``index`` (0-based), or None when there is no such check."""
        times = self._times
        position = index - self._offset
        if 0 <= position < len(times):
            return times[position]
        assert position >= 0, "a released check time was asked for"
        config = self._config
        while self._offset + len(times) <= index and not self._done:
            if config.max_attempts is not None and self._sleeps >= config.max_attempts - 1:
                self._done = True
                break
            previous = times[-1] if times else self.start
            due = previous + self._delay(self._sleeps, self._next_delay)
            self._sleeps += 1
            self._next_delay = config._grown(self._next_delay)
            if self.deadline is not None and due >= self.deadline:
                due = self.deadline
                self._done = True
            if times and due <= times[-1]:
                self._done = True
                break
            times.append(due)
        position = index - self._offset
        return times[position] if position < len(times) else None

    def release(self, index: int) -> None:
        """Checks before ``index`` will not be asked for again: forget their times."""
        drop = min(index - self._offset, len(self._times) - 1)
        if drop > 0:
            del self._times[:drop]
            self._offset += drop
