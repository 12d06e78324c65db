"""Fakes for scheduling tests on virtual time: a clock and an in-memory S3.

:class:`FakeClock` implements the engine's ``Clock``: virtual time moves only when every
task of the event loop is blocked (the engine idle, waiting on the clock), and then jumps
to the earliest deadline anyone waits for. :class:`FakeS3` implements what the waiting engine
uses of ``S3Transport`` (the ``S3Requests`` protocol) over a dict, counting GETs and LISTs per key.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import Any, TypeVar

import anyio

from aiosagemaker._aws_errors import ErrorKind, classify
from aiosagemaker._notifications._listener import NotificationStats
from aiosagemaker._notifications._messages import Notification
from aiosagemaker._s3 import Consume, Fetched, ListedPage, ObjectTooLarge, S3Uri
from aiosagemaker._waiting._outcomes import ResultLocations
from aiosagemaker._waiting._registry import Entry

T = TypeVar("T")


class FakeClock:
    """Virtual monotonic time for the waiting engine (see the module docstring)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.start = start
        self._now = start
        self._sleepers: list[tuple[float, int, anyio.CancelScope]] = []
        self._order = itertools.count()
        self.jumps = 0

    def now(self) -> float:
        return self._now

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock was made."""
        return self._now - self.start

    def move_on_at(self, deadline: float) -> AbstractContextManager[anyio.CancelScope]:
        return self._scope(deadline)

    @contextmanager
    def _scope(self, deadline: float) -> Iterator[anyio.CancelScope]:
        with anyio.CancelScope() as scope:
            if deadline <= self._now:
                scope.cancel()
            else:
                heapq.heappush(self._sleepers, (deadline, next(self._order), scope))
            try:
                yield scope
            finally:
                scope.cancel()  # done with: the heap row is skipped from now on

    async def sleep_until(self, deadline: float) -> None:
        with self.move_on_at(deadline):
            await anyio.sleep_forever()

    def _advance(self) -> bool:
        """Jump to the earliest live deadline and end its waits; False when none is left."""
        while self._sleepers and self._sleepers[0][2].cancel_called:
            heapq.heappop(self._sleepers)
        if not self._sleepers:
            return False
        self._now = max(self._now, self._sleepers[0][0])
        self.jumps += 1
        while self._sleepers and self._sleepers[0][0] <= self._now:
            heapq.heappop(self._sleepers)[2].cancel()
        return True

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeClock]:
        """Drive the clock while the block runs: advance whenever the loop is idle."""
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._drive)
            try:
                yield self
            finally:
                tasks.cancel_scope.cancel()

    async def _drive(self) -> None:
        while True:
            await _all_blocked()
            if not self._advance():
                await anyio.sleep(0.001)  # nobody waits on the clock: let the real world go


async def _all_blocked() -> None:
    """Return once every other task waits on something and no callback is ready to run."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    idle_rounds = 0
    while idle_rounds < 3:  # a few quiet rounds: wake-ups scheduled by call_soon have run
        await asyncio.sleep(0)
        busy = bool(getattr(loop, "_ready", ()))
        for task in asyncio.all_tasks():
            if task is me:
                continue
            waiter = getattr(task, "_fut_waiter", None)
            if waiter is None or waiter.done():
                busy = True
                break
        idle_rounds = 0 if busy else idle_rounds + 1


class FakeS3:
    """``S3Requests`` over a dict of objects (key -> bytes), made inside the event loop.

    ``gets``, ``puts`` and ``lists`` count requests per key (per listed prefix for LIST).
    ``ghosts``: locations that list but whose GET finds nothing (an eventually consistent or
    misbehaving store).
    """

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.gets: Counter[str] = Counter()
        self.lists: Counter[str] = Counter()
        self.puts: Counter[str] = Counter()
        self.ghosts: set[str] = set()
        self.page_size = 1000
        """Keys per LIST page (as S3: a continuation token is the last key listed)."""
        self.client: Any = None
        self.limiter = anyio.CapacityLimiter(8)

    def put_object(self, uri: str, body: bytes, content_type: str = "text/plain") -> None:
        location = S3Uri.parse(uri)
        self.objects[(location.bucket, location.key)] = (body, content_type)

    def note_error(self, error: BaseException) -> ErrorKind:
        return classify(error)

    async def get_once(
        self,
        uri: S3Uri,
        consume: Consume[T],
        *,
        max_bytes: int | None = None,
        detecting: bool = True,
    ) -> Fetched[T] | None:
        await anyio.lowlevel.checkpoint()
        self.gets[str(uri)] += 1
        stored = self.objects.get((uri.bucket, uri.key))
        if stored is None or str(uri) in self.ghosts:
            return None
        body, content_type = stored
        if max_bytes is not None and len(body) > max_bytes:
            raise ObjectTooLarge(len(body))
        value = await consume(_Body(body))
        return Fetched(value=value, content_type=content_type, content_length=len(body))

    async def get(
        self, uri: S3Uri, consume: Consume[T], *, max_bytes: int | None = None, **_: Any
    ) -> Fetched[T] | None:
        return await self.get_once(uri, consume, max_bytes=max_bytes, detecting=False)

    async def put(self, uri: S3Uri, body: Any, content_type: str, **context: Any) -> None:
        await anyio.lowlevel.checkpoint()
        self.puts[str(uri)] += 1
        data = body if isinstance(body, bytes) else body.read()
        self.objects[(uri.bucket, uri.key)] = (data, content_type)

    async def delete(self, uri: S3Uri, **context: Any) -> None:
        await anyio.lowlevel.checkpoint()
        self.objects.pop((uri.bucket, uri.key), None)

    async def list_page(self, bucket: str, prefix: str, token: str | None = None) -> ListedPage:
        await anyio.lowlevel.checkpoint()
        self.lists[f"s3://{bucket}/{prefix}"] += 1
        keys = sorted(
            (key, len(body))
            for (held, key), (body, _) in self.objects.items()
            if held == bucket and key.startswith(prefix) and (token is None or key > token)
        )
        page = keys[: self.page_size]
        next_token = page[-1][0] if len(keys) > self.page_size else None
        return ListedPage(dict(page), next_token)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, amt: int | None = None) -> bytes:
        end = len(self._data) if amt is None or amt < 0 else amt
        chunk, self._data = self._data[:end], self._data[end:]
        return chunk


class FakeDetector:
    """A ``Detector`` the test announces results through (``announce``), no SQS."""

    def __init__(self, safety_interval: float = 30.0) -> None:
        self.safety_interval = safety_interval
        self.stats = NotificationStats()
        self.entries: dict[str, Entry] = {}
        self.started = self.closed = 0

    async def start(self) -> None:
        self.started += 1

    async def aclose(self) -> None:
        self.closed += 1

    def attach(self, entry: Entry, *, use_held: bool) -> None:
        self.entries[entry.output] = entry

    def detach(self, entry: Entry) -> None:
        self.entries.pop(entry.output, None)

    def lookup(self, locations: ResultLocations) -> Notification | None:
        return None

    def silence(self) -> str:
        return "Nothing was announced."

    def announce(self, output: str, body: bytes) -> None:
        """A successful inference with an inline body, as a notification would tell it."""
        notification = Notification(True, None, output, None, content_type="text/plain", body=body)
        self.entries[output].deliver(notification)
