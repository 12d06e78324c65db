"""Wait strategies: how a response learns that its result (or failure) exists.

A strategy is handed the result locations, a :class:`WaiterConfig` (or None for a single
check) and a ``consume`` coroutine that reads the found object's body; it returns an
:class:`Outcome` or raises :class:`PollingTimeoutError` / :class:`ObjectNotExistedError`.
:class:`S3Polling` is the default; a notification-driven strategy plugs in the same way.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import anyio

from ._config import WaiterConfig
from ._exceptions import ObjectNotExistedError, PollingTimeoutError
from ._s3 import Consume, Fetched, S3Transport, S3Uri, read_all

__all__ = ["Completed", "Failed", "Outcome", "ResultLocations", "S3Polling", "WaitStrategy"]

logger = logging.getLogger("aiosagemaker")

T = TypeVar("T")

STILL_RUNNING = (
    "Inference could still be running: the request may be queued (RequestTTLSeconds) or "
    "processing (InvocationTimeoutSeconds). Wait longer with a larger WaiterConfig, or check "
    "the endpoint's ApproximateBacklogSizePerInstance metric."
)


@dataclass(frozen=True, slots=True)
class ResultLocations:
    """Where one inference's result and failure file will appear."""

    output: S3Uri
    failure: S3Uri | None
    inference_id: str | None = None

    def context(self) -> dict[str, Any]:
        """The error-context keywords every exception about this inference carries."""
        return {
            "output_path": str(self.output),
            "failure_path": None if self.failure is None else str(self.failure),
            "inference_id": self.inference_id,
        }


@dataclass(frozen=True, slots=True)
class Completed(Generic[T]):
    """The output object exists; ``fetched.value`` is what ``consume`` made of its body."""

    fetched: Fetched[T]


@dataclass(frozen=True, slots=True)
class Failed:
    """The failure file exists; ``message`` is its text."""

    message: str


Outcome = Completed[T] | Failed


class WaitStrategy(Protocol):
    """Finds the outcome of one inference."""

    async def wait(
        self,
        locations: ResultLocations,
        waiter_config: WaiterConfig | None,
        consume: Consume[T],
    ) -> Outcome[T]:
        """Return the outcome, waiting as ``waiter_config`` allows (None: one check)."""
        ...


def failure_text(raw: bytes, location: S3Uri) -> str:
    """The failure file as text; never fails, says so when the file is empty or not UTF-8."""
    if not raw:
        return f"(the failure file at {location} is empty)"
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        return (
            f"(the failure file at {location} is not UTF-8 text; undecodable bytes replaced) {text}"
        )


FAILURE_EVERY = 1
"""Default attempts per failure-location probe: every attempt, like the SDK's waiters."""


class S3Polling:
    """Polls the output and failure locations concurrently, one GET each per attempt.

    With ``failure_every=n`` the failure location is probed only every n-th attempt (and on
    the last one, so a timeout never hides a failure): fewer requests when failures are rare,
    at the price of seeing a failure up to ``n - 1`` poll intervals later.

    A GET that finds the object is the result (no HEAD-then-GET). Sleeps with ``anyio.sleep``
    between attempts, so the event loop keeps running; the one task an attempt may start
    (the failure GET) ends inside the attempt's task group.
    """

    def __init__(
        self,
        transport: S3Transport,
        *,
        failure_every: int = FAILURE_EVERY,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.failure_every = failure_every
        self.clock = clock
        self.rng = rng or random.Random()

    async def check(
        self, locations: ResultLocations, consume: Consume[T], *, failure: bool = True
    ) -> Outcome[T] | None:
        """One attempt: GET the output and (unless ``failure=False``) the failure location.

        Both GETs run at once in a task group; the output wins if both exist.
        """
        context = locations.context()
        if not failure or locations.failure is None:
            output = await self.transport.get(locations.output, consume, **context)
            return None if output is None else Completed(output)
        failed: list[Failed | None] = []
        errors: list[Exception] = []
        # Both request slots first, then the task: a waiting attempt holds no extra task.
        # (With a limit of one request at a time, each GET waits for the slot on its own.)
        paired = self.transport.limiter.total_tokens >= 2

        async def probe_failure() -> None:
            try:
                failed.append(await self.check_failure(locations, limited=not paired))
            except Exception as error:  # re-raised below, outside the task group
                errors.append(error)

        output = None
        slots = self.transport.reserve(2) if paired else contextlib.nullcontext()
        async with slots, anyio.create_task_group() as group:
            group.start_soon(probe_failure)
            try:
                output = await self.transport.get(
                    locations.output, consume, limited=not paired, **context
                )
            except Exception as error:
                errors.insert(0, error)
        if output is not None:
            return Completed(output)
        if errors:
            raise errors[0]
        return failed[0] if failed else None

    async def check_failure(
        self, locations: ResultLocations, *, limited: bool = True
    ) -> Failed | None:
        """GET the failure location only."""
        if locations.failure is None:
            return None
        context = locations.context()
        failure = await self.transport.get(locations.failure, read_all, limited=limited, **context)
        if failure is not None:
            return Failed(failure_text(failure.value, locations.failure))
        return None

    async def wait(
        self,
        locations: ResultLocations,
        waiter_config: WaiterConfig | None,
        consume: Consume[T],
    ) -> Outcome[T]:
        """Check until an outcome appears or ``waiter_config`` runs out."""
        context = locations.context()
        output_path = str(locations.output)
        if waiter_config is None:
            outcome = await self.check(locations, consume)
            if outcome is None:
                raise ObjectNotExistedError("Inference could still be running", **context)
            return outcome

        started = self.clock()
        deadline = None if waiter_config.timeout is None else started + waiter_config.timeout
        delays = waiter_config.delays(self.rng)
        attempts = 0
        while True:
            attempts += 1
            probe_failure = attempts % self.failure_every == 0
            outcome = await self.check(locations, consume, failure=probe_failure)
            if outcome is not None:
                return outcome
            delay = next(delays, None)
            if deadline is not None and delay is not None:
                remaining = deadline - self.clock()
                delay = None if remaining <= 0 else min(delay, remaining)
            if delay is None:
                if not probe_failure:  # the last attempt always looks for a failure too
                    failed = await self.check_failure(locations)
                    if failed is not None:
                        return failed
                break
            logger.debug(
                "no result at %s after attempt %d; next check in %.3f s",
                output_path,
                attempts,
                delay,
            )
            await anyio.sleep(delay)
        seconds = round(self.clock() - started, 3)
        logger.debug("gave up on %s after %d attempts, %.3f s", output_path, attempts, seconds)
        raise PollingTimeoutError(STILL_RUNNING, seconds=seconds, attempts=attempts, **context)
