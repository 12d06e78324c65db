"""The waiter's side of the engine: waiting on an entry, watching one, and reading what it
found (result GETs, a failure file, a body already in hand) into an outcome.

:class:`ResultReader` is the part of :class:`~._engine.WaitingEngine` that turns resolved
entries into outcomes; the engine itself registers, schedules and checks. A little over the
library's usual module size because waiting, watching and reading share one set of rules
(deadlines, the read budget, close) that would only be copied if split.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import anyio

from .._aws_errors import classify
from .._config import WaiterConfig
from .._exceptions import (
    ObjectNotExistedError,
    PollingTimeoutError,
    PredictorClosedError,
    ResultTooLargeError,
    UnexpectedClientError,
)
from .._s3 import DEFAULT_CONTENT_TYPE, Consume, Fetched, ObjectTooLarge, S3Requests, read_prefix
from ._budget import RequestBudget
from ._clock import Clock
from ._detector import Detector
from ._outcomes import (
    FAILURE_TEXT_MAX_BYTES,
    STILL_RUNNING,
    Completed,
    Failed,
    Outcome,
    ResultLocations,
    failure_text,
)
from ._registry import Broken, Entry, Exhausted, Found

__all__ = ["HANDOFF_BYTES", "MAX_SETTLERS", "InlineBody", "OnDone", "ResultReader", "Watcher"]

logger = logging.getLogger("aiosagemaker")

T = TypeVar("T")
OnDone = Callable[[Outcome[T] | None, BaseException | None], Awaitable[None] | None]
"""What a watched wait calls with its outcome or error (awaited if it returns an awaitable)."""

HANDOFF_BYTES = 1024 * 1024
"""A probing GET reads a found result up to this size and hands the bytes to the waiter;
a larger one is left for the waiter to stream (one more GET)."""

MAX_SETTLERS = 16
"""Most results of watched waits read at once: thousands per second, yet the reads that answer
together take the loop a few ms, not one stall after a listing found thousands."""

Watcher = tuple[OnDone[Any], Consume[Any], int | None]
"""A watch's ``on_done``, ``consume`` and ``max_bytes``."""

_NO_REASON = "(the failure notification carries no failureReason and there is no failure file)"


class InlineBody:
    """A streaming-body stand-in over bytes already in memory (for ``consume``)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    async def read(self, amt: int | None = None) -> bytes:
        end = len(self._data) if amt is None or amt < 0 else self._position + amt
        chunk = self._data[self._position : end]
        self._position += len(chunk)
        return chunk

    def close(self) -> None:
        self._position = len(self._data)


class ResultReader:
    """Waiting on entries and reading their outcomes (the engine's waiter side)."""

    transport: S3Requests
    budget: RequestBudget
    detector: Detector | None
    time: Clock
    clock: Callable[[], float]
    _closed: bool
    _tasks: anyio.abc.TaskGroup | None
    _to_settle: deque[Entry]
    _settlers: int
    _watchers: dict[Entry, Watcher]

    # what the engine provides
    def register(
        self,
        locations: ResultLocations,
        config: WaiterConfig,
        *,
        handoff_bytes: int = HANDOFF_BYTES,
        on_resolve: Callable[[Entry], None] | None = None,
    ) -> Entry:
        raise NotImplementedError

    def unregister(self, entry: Entry) -> None:
        raise NotImplementedError

    def rearm(self, entry: Entry, misses: int = 1) -> None:
        raise NotImplementedError

    def _expire_at_deadline(self, entry: Entry) -> None:
        raise NotImplementedError

    async def _start_listener(self) -> None:
        raise NotImplementedError

    @property
    def listener(self) -> Detector | None:
        raise NotImplementedError

    async def wait(
        self,
        locations: ResultLocations,
        config: WaiterConfig,
        consume: Consume[T],
        *,
        max_bytes: int | None,
    ) -> Outcome[T]:
        """Wait for the outcome as ``config`` allows; ``PollingTimeoutError`` when it runs out.

        The wait ends by ``config``'s deadline (plus the final check's allowance) whatever
        a running S3 request is doing, reading the result included; cancelling it only
        unregisters it.
        """
        if self.listener is not None:
            await self._start_listener()
        handoff = HANDOFF_BYTES if max_bytes is None else min(HANDOFF_BYTES, max_bytes)
        entry = self.register(locations, config, handoff_bytes=handoff)
        try:
            while True:
                with self.time.move_on_at(entry.deadline):
                    await entry.resolution()
                try:
                    outcome = await self.settle(entry, consume, max_bytes=max_bytes)
                except PredictorClosedError:
                    raise
                except Exception as error:  # closing interrupted the read
                    if self._closed:
                        raise _closed_error(entry) from error
                    if not self._read_again_later(entry, error):
                        raise
                    outcome = None
                if outcome is not None:
                    return outcome
                self.rearm(entry, self._misses(entry))
        finally:
            self.unregister(entry)

    def watch(
        self,
        locations: ResultLocations,
        config: WaiterConfig,
        consume: Consume[T],
        *,
        max_bytes: int | None,
        on_done: OnDone[T],
    ) -> Entry:
        """Register a wait whose outcome is read in the engine's own task group.

        ``on_done(outcome, None)`` or ``on_done(None, error)`` is called once (and awaited
        when it returns an awaitable: decoding a large result, say); no task exists
        for the wait until its signal arrives. ``unregister`` the entry to stop watching.
        """
        handoff = HANDOFF_BYTES if max_bytes is None else min(HANDOFF_BYTES, max_bytes)

        entry = self.register(
            locations, config, handoff_bytes=handoff, on_resolve=self._watch_resolved
        )
        self._watchers[entry] = (on_done, consume, max_bytes)
        self._expire_at_deadline(entry)
        return entry

    def _watch_resolved(self, entry: Entry) -> None:
        """A watched entry was resolved: read its outcome in a settler."""
        self._to_settle.append(entry)
        self._spawn_settlers()

    def _spawn_settlers(self) -> None:
        """Enough reader tasks for the resolved watches: never more than :data:`MAX_SETTLERS`,
        nor than the connection pool."""
        assert self._tasks is not None
        cap = max(1, min(MAX_SETTLERS, int(self.transport.limiter.total_tokens)))
        while self._settlers < min(cap, len(self._to_settle)):
            self._settlers += 1
            self._tasks.start_soon(self._settler)

    async def _settler(self) -> None:
        """Read the outcomes of resolved watches, one after another, until none is left."""
        try:
            while self._to_settle:
                entry = self._to_settle.popleft()
                watcher = self._watchers.get(entry)
                if watcher is not None:  # else unregistered meanwhile
                    await self._settle_watched(entry, watcher[1], watcher[2])
        finally:
            self._settlers -= 1

    async def _settle_watched(
        self, entry: Entry, consume: Consume[T], max_bytes: int | None
    ) -> None:
        try:
            outcome = await self.settle(entry, consume, max_bytes=max_bytes)
        except Exception as error:
            if self._read_again_later(entry, error):
                self.rearm(entry, self._misses(entry))
                return
            finishing = self._finish(entry, None, error)
        else:
            if outcome is None:
                self.rearm(entry, self._misses(entry))
                return
            finishing = self._finish(entry, outcome, None)
        if finishing is not None:
            await finishing

    def _finish(
        self, entry: Entry, outcome: Outcome[Any] | None, error: BaseException | None
    ) -> Awaitable[None] | None:
        """Call the watch's ``on_done`` once, and never after it was unregistered (an
        awaitable it returns, off-loop decoding say, is the caller's to await)."""
        watcher = self._watchers.pop(entry, None)
        return None if watcher is None else watcher[0](outcome, error)

    async def settle(
        self, entry: Entry, consume: Consume[T], *, max_bytes: int | None
    ) -> Outcome[T] | None:
        """Turn a resolved entry into its outcome (raising what it ended with).

        None: the signal announced an object that is not there; wait again. Reading the
        outcome (result GETs, body reads, the failure file) ends by the wait's hard deadline
        when it has a ``timeout``: then ``PollingTimeoutError``, chained to the last S3 error.
        """
        signal = entry.signal
        if signal is None or isinstance(signal, Exhausted):
            raise self._timeout(entry)
        if isinstance(signal, Broken):
            raise signal.error
        schedule = entry.schedule
        if not schedule.hard_limit:  # attempts only: each read is bounded by the transport
            return await self._collect_for(entry, signal, consume, max_bytes)
        entry.last_error = None
        with self.time.move_on_at(entry.deadline):
            return await self._collect_for(entry, signal, consume, max_bytes)
        raise self._timeout(entry, found=signal)

    async def _collect_for(
        self, entry: Entry, found: Found, consume: Consume[T], max_bytes: int | None
    ) -> Outcome[T] | None:
        def noted(error: BaseException) -> None:
            entry.last_error = error

        return await self.collect(
            entry.locations, found, consume, max_bytes=max_bytes, on_error=noted
        )

    def _read_again_later(self, entry: Entry, error: BaseException) -> bool:
        """Whether a found outcome whose reads kept failing with transient errors (an S3
        outage, resets, SlowDown) is looked for again rather than failed: the object is still
        in S3, so the wait goes on until its deadline and the next check finds it again."""
        if self._closed or not isinstance(error, UnexpectedClientError):
            return False
        cause = error.__cause__
        if cause is None or not classify(cause).retryable:
            return False
        if self.clock() >= entry.deadline:
            return False
        entry.last_error = cause
        if isinstance(entry.signal, Found):
            entry.unread = entry.signal.kind
        logger.debug("reading %s kept failing (%r); looking again", entry.locations.output, cause)
        return True

    @staticmethod
    def _misses(entry: Entry) -> int:
        """The GETs :meth:`collect` made in vain for the entry's signal (the output's, and
        the failure file's when the signal did not bring it)."""
        signal = entry.signal
        if not isinstance(signal, Found) or signal.kind == "output":
            return 1
        return 2 if signal.fetched is None and entry.locations.failure is not None else 1

    def _timeout(self, entry: Entry, found: Found | None = None) -> PollingTimeoutError:
        seconds = round(self.clock() - entry.started, 3)
        message = STILL_RUNNING
        cause = entry.last_error
        if entry.unread is not None:
            where = entry.locations.output if entry.unread == "output" else entry.locations.failure
            message = (
                f"The {entry.unread} object {where} was found, but reading it kept failing "
                "until the timeout; it is still in S3 (wait on the response again later)."
            )
        elif found is not None:
            where = entry.locations.output if found.kind == "output" else entry.locations.failure
            message = (
                f"The {found.kind} object {where} was found, but reading it did not finish "
                "within the timeout; it is still in S3 (wait with a larger timeout, or stream "
                "a large result with response.download(path))."
            )
            if cause is None:
                cause = TimeoutError(f"S3 did not finish answering for {where} in time")
        if self.detector is not None:
            message += " " + self.detector.silence()
        if entry.last_error is not None:
            message += f" S3 checks were failing; last error: {entry.last_error!r}."
        error = PollingTimeoutError(
            message, seconds=seconds, attempts=entry.attempts, **entry.locations.context()
        )
        error.__cause__ = cause
        logger.debug("gave up on %s after %.3f s", entry.locations.output, seconds)
        return error

    async def collect(
        self,
        locations: ResultLocations,
        found: Found,
        consume: Consume[T],
        *,
        max_bytes: int | None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Outcome[T] | None:
        """Read what ``found`` announced: one GET at most (none for a body in hand).

        The GETs take a free shared S3 slot or else a detection slot, so a found result is
        not queued behind uploads (:meth:`.._s3_transport.S3Transport.get` with ``found``).
        Results cost the detection budget nothing: only GETs that miss are charged, when the
        wait is rearmed (:meth:`_misses`), so keys that list but do not GET are backed off.
        Charging every read as it started held other groups' checks off for seconds behind
        a burst of found results being read.

        ``on_error`` is told of every S3 error of these reads (retried ones included).
        """
        return await self._read_found(locations, found, consume, max_bytes, on_error)

    async def _read_found(
        self,
        locations: ResultLocations,
        found: Found,
        consume: Consume[T],
        max_bytes: int | None,
        on_error: Callable[[BaseException], None] | None,
    ) -> Outcome[T] | None:
        notification = found.announcement
        if found.kind == "output":
            if notification is not None and notification.body is not None:
                assert self.detector is not None
                if max_bytes is not None and len(notification.body) > max_bytes:
                    size = len(notification.body)  # as a GET would: the limit holds inline too
                    raise ResultTooLargeError(size=size, limit=max_bytes, **locations.context())
                self.detector.stats.inline_results += 1
                return await self._from_memory(
                    notification.body, notification.content_type or DEFAULT_CONTENT_TYPE, consume
                )
            if found.fetched is not None and isinstance(found.fetched.value, bytes):
                fetched = found.fetched
                return await self._from_memory(fetched.value, fetched.content_type, consume)
            if max_bytes is not None and found.size is not None and found.size > max_bytes:
                raise ResultTooLargeError(size=found.size, limit=max_bytes, **locations.context())
            if notification is not None:
                assert self.detector is not None
                self.detector.stats.result_gets += 1
            output = await self._fetch(locations, consume, max_bytes, on_error, found=True)
            if output is None and notification is not None:
                logger.warning(
                    "notification says %s completed but the object is not there yet",
                    locations.output,
                )
            return None if output is None else Completed(output)
        # A failure: the output wins if both exist (one GET, for failures only).
        output = await self._fetch(locations, consume, max_bytes, on_error, found=True)
        if output is not None:
            return Completed(output)
        if found.fetched is not None and isinstance(found.fetched.value, tuple):
            raw, cut = found.fetched.value
            assert locations.failure is not None
            return Failed(failure_text(raw, locations.failure, cut=cut))
        if locations.failure is not None:
            if notification is not None:
                assert self.detector is not None
                self.detector.stats.result_gets += 1
            failed = await self.failure(locations, on_error, found=True)
            if failed is not None:
                return failed
        if notification is not None:
            return Failed(notification.failure_reason or _NO_REASON)
        return None

    async def _from_memory(
        self, data: bytes, content_type: str, consume: Consume[T]
    ) -> Completed[T]:
        value = await consume(InlineBody(data))
        return Completed(Fetched(value=value, content_type=content_type, content_length=len(data)))

    async def _fetch(
        self,
        locations: ResultLocations,
        consume: Consume[T],
        max_bytes: int | None,
        on_error: Callable[[BaseException], None] | None = None,
        *,
        found: bool = False,
    ) -> Fetched[T] | None:
        try:
            return await self.transport.get(
                locations.output,
                consume,
                max_bytes=max_bytes,
                on_error=on_error,
                found=found,
                **locations.context(),
            )
        except ObjectTooLarge as large:
            assert max_bytes is not None
            raise ResultTooLargeError(
                size=large.size, limit=max_bytes, exact=large.exact, **locations.context()
            ) from None

    async def failure(
        self,
        locations: ResultLocations,
        on_error: Callable[[BaseException], None] | None = None,
        *,
        found: bool = False,
    ) -> Failed | None:
        """GET the failure file (its first :data:`FAILURE_TEXT_MAX_BYTES`); ``found``: the
        read of what a notification or a check announced (the transport's read priority)."""
        if locations.failure is None:
            return None
        fetched = await self.transport.get(
            locations.failure,
            read_prefix(FAILURE_TEXT_MAX_BYTES),
            on_error=on_error,
            found=found,
            **locations.context(),
        )
        if fetched is None:
            return None
        raw, cut = fetched.value
        return Failed(failure_text(raw, locations.failure, cut=cut))

    async def check_once(
        self, locations: ResultLocations, consume: Consume[T], *, max_bytes: int | None
    ) -> Outcome[T]:
        """The SDK's single check: output and failure GET at once; ``ObjectNotExistedError``.

        In notification mode a held notification answers first.
        """
        if self.detector is not None:
            await self._start_listener()
            held = self.detector.lookup(locations)
            if held is not None:
                kind: Literal["output", "failure"] = "output" if held.succeeded else "failure"
                outcome = await self.collect(
                    locations, Found(kind, announcement=held), consume, max_bytes=max_bytes
                )
                if outcome is not None:
                    return outcome
            self.detector.stats.safety_checks += 1
        output: list[Fetched[T] | None] = []
        failed: list[Failed | None] = []
        errors: list[BaseException] = []

        async def check_failure() -> None:
            try:
                failed.append(await self.failure(locations))
            except Exception as error:  # re-raised below, outside the task group
                errors.append(error)

        async with anyio.create_task_group() as tasks:
            if locations.failure is not None:
                tasks.start_soon(check_failure)
            try:
                output.append(await self._fetch(locations, consume, max_bytes))
            except Exception as error:
                errors.insert(0, error)
        if output and output[0] is not None:
            return Completed(output[0])
        if errors:
            raise errors[0]
        if failed and failed[0] is not None:
            return failed[0]
        raise ObjectNotExistedError("Inference could still be running", **locations.context())


def _closed_error(entry: Entry) -> PredictorClosedError:
    return PredictorClosedError(
        f"the predictor was closed while waiting for {entry.locations.output}; the inference "
        "goes on at the endpoint: reopen the predictor (async with) and wait on the response "
        "again",
        **entry.locations.context(),
    )
