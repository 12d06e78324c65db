"""The waiting engine: one per predictor, finding every pending result with shared checks.

Callers register an :class:`~._registry.Entry` and sleep on its event; one background task
group (:meth:`WaitingEngine._run`) schedules checks per :class:`~._registry.Group` of
locations and resolves entries. Per group and per tick it picks the cheaper detector:

- **listing**: one paginated ``ListObjectsV2`` of the group's prefix finds every probe of the
  group whose object exists (then the waiter makes exactly one GET, which is the result);
- **per-object GET**: one GET per due probe (a GET that finds the object is the result).

A LIST is billed like :data:`LIST_PRICE` GETs, so a group is listed when more probes are due
than its last listing cost (pages x :data:`LIST_PRICE`); otherwise its due probes are GET.
Every detection request takes a token from the :class:`~._budget.RequestBudget` first.

Checks are batched: the first and the last check of a wait run at most :data:`FIRST_BATCH`
seconds after they are due; the others may wait until the group's previous check is one
interval old, so a group is checked about once per interval however many waits it holds.
Transient errors back a group off (doubling up to :data:`MAX_BACKOFF`) without using up any
wait's checks; the waiter's own deadline is what ends a wait, never a running request.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio
from botocore.exceptions import BotoCoreError, ClientError

from .._aws_errors import ACCESS_DENIED_CODES, ErrorKind, describe_s3_fatal, error_code
from .._config import WaiterConfig
from .._exceptions import (
    ObjectNotExistedError,
    PollingTimeoutError,
    PredictorClosedError,
    ResultTooLargeError,
    UnexpectedClientError,
)
from .._notifications._queue import NotificationQueue
from .._s3 import (
    DEFAULT_CONTENT_TYPE,
    Consume,
    Fetched,
    ObjectTooLarge,
    S3Requests,
    S3Uri,
    read_all,
    read_prefix,
)
from ._budget import RequestBudget
from ._clock import Clock, as_clock
from ._detector import Detector, NotificationDetector
from ._outcomes import (
    FAILURE_TEXT_MAX_BYTES,
    STILL_RUNNING,
    Completed,
    Failed,
    Outcome,
    ResultLocations,
    failure_text,
)
from ._registry import (
    Broken,
    Cohort,
    Deadline,
    Entry,
    Exhausted,
    Found,
    Group,
    Lane,
    ProbeKind,
    listing_prefix,
)
from ._schedule import Schedule

__all__ = ["Detection", "EngineStats", "InlineBody", "WaitingEngine"]

logger = logging.getLogger("aiosagemaker")

T = TypeVar("T")
Detection = Literal["auto", "list", "get"]
OnDone = Callable[[Outcome[T] | None, BaseException | None], Awaitable[None] | None]
"""What a watched wait calls with its outcome or error (awaited if it returns an awaitable)."""

LIST_PRICE = 12.5
"""A LIST request costs as much as this many GETs (S3 Standard: $0.005 vs $0.0004 / 1,000)."""
FIRST_BATCH = 0.1
"""Most seconds a first or last check waits to be batched with others of its group."""
MIN_GAP = 0.01
"""Least seconds between two checks of one group."""
MAX_BACKOFF = 1.0
"""Longest pause of a group after transient S3 errors."""
CHECK_TIMEOUT = 10.0
"""A check (all pages of a listing, or one round of GETs) that takes longer is abandoned."""
KEYS_PER_GET = 250
"""Listed keys that cost the client as much CPU to read as one GET request (measured: about
4 us per key with the library's lean listing reader, against about 1 ms per GET)."""
JOIN_WINDOW = FIRST_BATCH
"""Most seconds after a cohort's start that a new wait may still join it (its checks then
come up to this much early; its own deadline stays its own)."""
HANDOFF_BYTES = 1024 * 1024
"""A probing GET reads a found result up to this size and hands the bytes to the waiter;
a larger one is left for the waiter to stream (one more GET)."""

_NO_REASON = "(the failure notification carries no failureReason and there is no failure file)"


@dataclass
class EngineStats:
    """What the engine did (for benchmarks and tests)."""

    registered: int = 0
    lists: int = 0
    list_pages: int = 0
    probe_gets: int = 0
    found_by_list: int = 0
    found_by_get: int = 0
    found_by_notification: int = 0
    transient_errors: int = 0
    lane_checks: int = 0
    """Scheduled checks counted: one per cohort lane and check, whatever its number of waits."""


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


class WaitingEngine:
    """The registry of pending waits, its scheduler and its detectors, for one predictor.

    Args:
        transport: The predictor's S3 requests (an :class:`~.._s3.S3Transport`).
        budget: The S3 request budget for detection requests.
        detection: ``"auto"`` (cheaper of listing and GET per group and tick), or force
            ``"list"`` / ``"get"``.
        failure_every: Probe failure locations only every n-th scheduled check (and the
            last) when checking by GET.
        notifications: An SQS queue: notifications resolve entries; S3 checks are the slow
            safety net (every ``safety_poll_interval`` seconds, and at the end).
        sqs: The open SQS client for ``notifications``.
        detector: Another source of result announcements (a :class:`~._detector.Detector`;
            ``notifications`` makes a :class:`~._detector.NotificationDetector`).
        clock: What the engine reads the time from and waits on (a :class:`~._clock.Clock`,
            or a plain monotonic time function); tests pass a fake one.
    """

    def __init__(
        self,
        transport: S3Requests,
        budget: RequestBudget,
        *,
        detection: Detection = "auto",
        failure_every: int = 1,
        notifications: NotificationQueue | None = None,
        sqs: Any = None,
        detector: Detector | None = None,
        clock: Clock | Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.budget = budget
        self.detection: Detection = detection
        self.failure_every = failure_every
        if notifications is not None:
            detector = NotificationDetector(notifications, sqs)
        self.detector = detector
        self.time = as_clock(clock)
        self.clock = self.time.now
        self.rng = rng or random.Random()
        self.stats = EngineStats()
        self._groups: dict[tuple[str, str], Group] = {}
        self._deadlines: list[tuple[float, int, Deadline]] = []
        """Hard deadlines of watched entries (a heap), expired by the scheduler."""
        self._sequence = itertools.count()
        self._open: dict[tuple[Any, ...], Cohort] = {}
        """The latest cohort per (groups, config), which new waits may join while it is open."""
        self._task: asyncio.Task[None] | None = None
        self._tasks: anyio.abc.TaskGroup | None = None
        self._to_settle: deque[tuple[Entry, Any, int | None]] = deque()
        self._settlers = 0
        self._wakeup = anyio.Event()
        self._closed = False
        self._pending: set[Entry] = set()
        """Registered entries (waits and watches): settled with PredictorClosedError at close."""
        self._watchers: dict[Entry, OnDone[Any]] = {}
        """Watches whose ``on_done`` has not been called yet."""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the scheduler task in the running event loop (again, if it died)."""
        self._ensure_running()

    def _ensure_running(self) -> None:
        if self._closed:
            raise PredictorClosedError(
                "the predictor is closed; reopen it (async with) to wait again"
            )
        if self._task is not None and not self._task.done():
            return
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="aiosagemaker-waiting-engine")
        self._task.add_done_callback(self._stopped)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        """The scheduler must not stop while the predictor is open: restart it."""
        if self._closed or task.cancelled() or task is not self._task:
            return
        logger.error("waiting engine stopped (%r); restarting", task.exception())
        self._task = None
        for group in self._groups.values():
            group.inflight = False
            group.scope = None
            for lane in list(group.lanes):
                group.push(lane)
        self._ensure_running()

    @property
    def listener(self) -> Detector | None:
        """The detector that is told of results, if any (the older name)."""
        return self.detector

    async def _start_listener(self) -> None:
        assert self.detector is not None
        await self.detector.start()

    async def aclose(self) -> None:
        """Stop the scheduler and the listener; every pending wait ends with
        :class:`PredictorClosedError` at once."""
        self._closed = True
        if self.detector is not None:
            await self.detector.aclose()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close_pending()

    def _close_pending(self) -> None:
        """End every registered wait and unfinished watch with PredictorClosedError."""
        self._to_settle.clear()
        for entry in list(self._pending):
            if entry not in self._watchers:
                self._resolve(entry, Broken(_closed_error(entry)))
        for entry in list(self._watchers):
            self._detach(entry)
            try:
                self._finish(entry, None, _closed_error(entry))
            except Exception:
                logger.exception("settling %s at close failed", entry.locations.output)

    def _wake(self) -> None:
        self._wakeup.set()

    # -- registry --------------------------------------------------------------------------

    def schedule_for(self, config: WaiterConfig) -> Schedule:
        """The check times of a wait starting now (notification mode: the safety net)."""
        now = self.clock()
        schedule = Schedule(config, now, self.rng)
        if self.detector is None or schedule.last <= now:
            return schedule
        budget = schedule.last - now
        safety = WaiterConfig(
            max_attempts=None, delay=min(self.detector.safety_interval, budget), timeout=budget
        )
        return Schedule(
            safety, now, self.rng, first_check=False, hard_limit=config.timeout is not None
        )

    def register(
        self,
        locations: ResultLocations,
        config: WaiterConfig,
        *,
        handoff_bytes: int = HANDOFF_BYTES,
        on_resolve: Callable[[Entry], None] | None = None,
    ) -> Entry:
        """Add a wait; its first check is due now (notification mode: after the interval).

        A wait registered for the same groups with the same config as one before it, within
        :data:`JOIN_WINDOW` seconds and before that one's first check, joins its cohort.
        """
        self._ensure_running()
        now = self.clock()
        failure = locations.failure
        key = (
            _group_key(locations.output),
            None if failure is None else _group_key(failure),
            config,
        )
        cohort = self._open.get(key)
        deadline = None
        if cohort is not None and cohort.open and now - cohort.schedule.start <= JOIN_WINDOW:
            deadline = cohort.schedule.admit(now)
        if cohort is None or deadline is None:
            cohort = self._open[key] = Cohort(self.schedule_for(config))
            deadline = cohort.schedule.hard_deadline
        entry = Entry(
            locations,
            cohort.schedule,
            handoff_bytes=handoff_bytes,
            on_resolve=on_resolve,
            started=now,
            deadline=deadline,
        )
        self.stats.registered += 1
        self._arm(entry, cohort, use_held=True)
        return entry

    def _arm(self, entry: Entry, cohort: Cohort, *, use_held: bool) -> None:
        entry.active = True
        self._pending.add(entry)
        if self.detector is not None:
            entry.router = self._notified
            self.detector.attach(entry, use_held=use_held)
            if entry.resolved:
                return
        if not cohort.lanes:
            self._lay_lanes(cohort, entry.locations)
        entry.cohort = cohort
        cohort.members.add(entry)
        for lane in cohort.lanes:
            assert lane.group is not None
            lane.group.add(lane.uri(entry).key, entry)
        self._wake()

    def _lay_lanes(
        self, cohort: Cohort, locations: ResultLocations, positions: tuple[int, ...] = ()
    ) -> None:
        """Give a new cohort its lanes (at ``positions`` of its schedule), each in its group."""
        kinds: list[tuple[ProbeKind, S3Uri, int]] = [("output", locations.output, 1)]
        if locations.failure is not None:
            kinds.append(("failure", locations.failure, self.failure_every))
        for number, (kind, uri, stride) in enumerate(kinds):
            index = positions[number] if number < len(positions) else 0
            lane = Lane(cohort, kind, stride, index)
            cohort.lanes.append(lane)
            self._group_for(uri).add_lane(lane)

    def unregister(self, entry: Entry) -> None:
        """Forget a wait (idempotent); a check that served only it is cancelled."""
        self._watchers.pop(entry, None)
        self._detach(entry)

    def _detach(self, entry: Entry) -> None:
        """Take the entry out of the registry (a watch still gets its ``on_done``)."""
        self._pending.discard(entry)
        entry.active = False
        if entry.timer is not None:  # a resolved watch holds its result: let both go now
            entry.timer.cancel()
            entry.timer = None
        if self.detector is not None:
            self.detector.detach(entry)
        cohort, entry.cohort = entry.cohort, None
        if cohort is None:
            return
        entry.positions = tuple(lane.index for lane in cohort.lanes)
        cohort.members.discard(entry)
        for lane in cohort.lanes:
            group = lane.group
            if group is None:
                continue
            group.remove(lane.uri(entry).key, entry)
            if group.size == 0 and group.scope is not None:
                group.scope.cancel()
        if not cohort.members:  # the last one out takes the lanes off their groups
            cohort.open = False
            for lane in cohort.lanes:
                if lane.group is not None:
                    lane.group.remove_lane(lane)
            cohort.lanes = []

    def rearm(self, entry: Entry, misses: int = 1) -> None:
        """Wait again after a signal whose object was not there (a notification ran ahead,
        or a listing saw a key that its GET did not find).

        The GETs that missed count as a check of the wait (its next check is the next one of
        its schedule, not at once) and take ``misses`` tokens of the request budget, so a key
        that lists but does not GET is backed off like any other miss.
        """
        self._detach(entry)
        entry.rearm()
        self.budget.charge(misses)
        now = self.clock()
        cohort = Cohort(entry.schedule.copy())  # a cohort of its own, where it left off
        cohort.open = False
        entry.schedule = cohort.schedule
        self._lay_lanes(cohort, entry.locations, entry.positions)
        for lane in cohort.lanes:
            lane.satisfy(now)
        if cohort.exhausted():
            for lane in cohort.lanes:
                assert lane.group is not None
                lane.group.remove_lane(lane)
            entry.positions = tuple(lane.index for lane in cohort.lanes)
            cohort.lanes = []
            entry.resolve(Exhausted())
            return
        self._arm(entry, cohort, use_held=False)
        if entry.on_resolve is not None:  # a watch: it still ends at its deadline
            self._expire_at_deadline(entry)

    def _notified(self, entry: Entry, signal: Found | Exhausted | Broken) -> None:
        self.stats.found_by_notification += 1
        self._resolve(entry, signal)

    def _group_for(self, uri: S3Uri) -> Group:
        key = _group_key(uri)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = Group(*key)
        return group

    def _resolve(self, entry: Entry, signal: Found | Exhausted | Broken) -> None:
        """Take the entry out of the registry, then resolve it (only an active one)."""
        if not entry.active:
            return
        self._detach(entry)
        entry.resolve(signal)

    # -- the scheduler -----------------------------------------------------------------------

    async def _run(self) -> None:
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            while True:
                now = self.clock()
                wake = math.inf
                for key, group in list(self._groups.items()):
                    if group.size == 0 and not group.inflight:
                        del self._groups[key]
                        continue
                    wake = min(wake, self._dispatch(group, now, tasks))
                wake = min(wake, self._expire_due(now))
                self._wakeup = anyio.Event()
                with self.time.move_on_at(wake):
                    await self._wakeup.wait()

    def _expire_due(self, now: float) -> float:
        """End the watches whose hard deadline has come; return when the next one comes."""
        while self._deadlines:
            at, _, deadline = self._deadlines[0]
            if at > now and deadline.entry is not None:
                return at
            heapq.heappop(self._deadlines)
            entry, deadline.entry = deadline.entry, None
            if entry is not None:
                entry.timer = None
                if entry.active and not entry.resolved:
                    self._resolve(entry, Exhausted())
        return math.inf

    def _dispatch(self, group: Group, now: float, tasks: anyio.abc.TaskGroup) -> float:
        """Start the group's check if one is due; return when to look at the group again."""
        if group.inflight:
            return math.inf
        start = math.inf
        urgent = group.earliest(urgent=True)
        if urgent is not None:
            due = urgent.due()
            assert due is not None
            start = max(due, group.last_check + FIRST_BATCH)
        regular = group.earliest(urgent=False)
        if regular is not None:
            due = regular.due()
            assert due is not None
            gap = max(MIN_GAP, regular.interval())
            start = min(start, max(due, group.last_check + gap))
            if self._extra_look(group):
                start = min(start, group.last_check + max(MIN_GAP, gap / 2))
        start = max(start, group.retry_at)
        if start > now:
            return start
        due_probes = group.pop_due(now)
        if due_probes:
            waits = sum(len(lane.cohort.members) for lane in due_probes)
            listing = self._choose_listing(group, waits)
        elif self._extra_look(group):
            listing = True
        else:  # nothing due after all (cannot happen by the rules above): look again soon
            return now + MIN_GAP
        group.inflight = True
        group.last_check = now
        tasks.start_soon(self._check, group, due_probes, listing, now)
        return math.inf

    def _extra_look(self, group: Group) -> bool:
        """Whether to list the group twice per interval instead of once.

        A LIST serves every probe of the group: while results are arriving (the last listing
        found some) and most of what it returns is still awaited, the extra looks find results
        sooner and use up no wait's checks. A group where nothing arrives is listed once per
        interval.
        """
        return (
            group.arriving
            and self._worth_listing(group, group.size)
            and 2 * group.size >= group.keys_listed
        )

    def _choose_listing(self, group: Group, due: int) -> bool:
        if self.detection == "get" or not group.list_allowed:
            return False
        if self.detection == "list":
            return True
        return self._worth_listing(group, due)

    def _worth_listing(self, group: Group, probes: int) -> bool:
        """Whether one LIST of the group costs less than a GET for each of ``probes``.

        Both in S3 requests (a LIST page is billed like :data:`LIST_PRICE` GETs) and in the
        client's CPU (parsing the keys the last listing returned, :data:`KEYS_PER_GET` of them
        per GET): a prefix holding many results already fetched is checked by GET instead.
        """
        if self.detection == "get" or not group.list_allowed:
            return False
        if self.detection == "list":
            return True
        return probes > LIST_PRICE * group.pages and probes * KEYS_PER_GET > group.keys_listed

    async def _check(self, group: Group, due: list[Lane], listing: bool, started: float) -> None:
        try:
            with anyio.CancelScope() as scope:
                group.scope = scope
                with self.time.move_on_at(started + CHECK_TIMEOUT) as timer:
                    if listing:
                        await self._list(group, due, started)
                    else:
                        await self._get_each(group, due, started)
                if timer.cancelled_caught:
                    self._transient(group, due, TimeoutError(f"no S3 answer in {CHECK_TIMEOUT} s"))
        except Exception as error:  # never let one check stop the engine: retry it later
            logger.error("checking %r failed unexpectedly: %r", group, error, exc_info=True)
            self._transient(group, due, error)
        finally:
            group.inflight = False
            group.scope = None
            for lane in due:
                if lane.group is group:
                    group.push(lane)
            self._wake()

    # -- detectors ---------------------------------------------------------------------------

    async def _list(self, group: Group, due: list[Lane], started: float) -> None:
        """List the group's prefix; every listed key that a probe waits for is found."""
        token: str | None = None
        pages = listed = found = 0
        while True:
            await self.budget.take()
            try:
                page = await self.transport.list_page(group.bucket, group.prefix, token)
            except (BotoCoreError, ClientError, OSError) as error:
                self._list_failed(group, due, error)
                return
            pages += 1
            listed += len(page.sizes)
            self.stats.list_pages += 1
            for key in page.sizes.keys() & group.keys.keys():
                for entry in group.waiting_for(key):
                    found += 1
                    self.stats.found_by_list += 1
                    kind = _kind_of(entry, group.bucket, key)
                    self._found(entry, Found(kind, size=page.sizes[key]))
            if page.next_token is None:
                break
            if self.detection == "auto" and pages * LIST_PRICE >= group.size:
                # Already dearer than a GET per due probe: learn the cost, GET them instead.
                group.pages = pages + 1
                return
            token = page.next_token
        self.stats.lists += 1
        group.pages = pages
        group.keys_listed = listed
        group.arriving = found > 0
        group.backoff = 0.0
        self._satisfy(due, started)

    def _list_failed(self, group: Group, due: list[Lane], error: BaseException) -> None:
        kind = self.transport.note_error(error)
        if kind.retryable:
            self._transient(group, due, error)
        elif error_code(error) in ACCESS_DENIED_CODES or kind is ErrorKind.NOT_FOUND:
            logger.info(
                "cannot list s3://%s/%s (%s); checking its results one GET each",
                group.bucket,
                group.prefix,
                error_code(error),
            )
            group.list_allowed = False
        else:
            uri = f"s3://{group.bucket}/{group.prefix}"
            message = describe_s3_fatal(error, uri, "list", group.bucket)
            for entry in group.entries():
                context = entry.locations.context()
                broken = UnexpectedClientError(message, code=error_code(error), **context)
                broken.__cause__ = error
                self._resolve(entry, Broken(broken))

    async def _get_each(self, group: Group, due: list[Lane], started: float) -> None:
        """GET each wait of the due lanes, at most as many at once as the connection limiter
        allows; the lanes' check counts once every GET answered (else it is retried)."""
        pending = [(lane, entry) for lane in due for entry in lane.cohort.members]
        pending.reverse()
        transient: list[BaseException] = []

        async def worker() -> None:
            while pending:
                lane, entry = pending.pop()
                if entry.cohort is lane.cohort and lane.group is group:
                    error = await self._get_probe(lane, entry)
                    if error is not None:
                        transient.append(error)

        workers = max(1, min(len(pending), int(self.transport.limiter.total_tokens)))
        async with anyio.create_task_group() as tasks:
            for _ in range(workers):
                tasks.start_soon(worker)
        if transient:
            self._transient(group, [], transient[-1])
        else:
            group.backoff = 0.0
            self._satisfy(due, started)

    async def _get_probe(self, lane: Lane, entry: Entry) -> BaseException | None:
        """One probing GET; returns the error when it was transient."""
        await self.budget.take()
        self.stats.probe_gets += 1
        uri = lane.uri(entry)
        try:
            if lane.kind == "failure":
                failure = await self.transport.get_once(uri, read_prefix(FAILURE_TEXT_MAX_BYTES))
                fetched: Fetched[Any] | None = failure
            else:
                fetched = await self.transport.get_once(
                    uri, read_all, max_bytes=entry.handoff_bytes
                )
        except ObjectTooLarge as large:  # left for the waiter to read (or refuse)
            self.stats.found_by_get += 1
            self._found(entry, Found(lane.kind, size=large.size if large.exact else None))
            return None
        except (BotoCoreError, ClientError, OSError) as error:
            if self.transport.note_error(error).retryable:
                entry.last_error = error
                return error
            message = describe_s3_fatal(error, uri, "read", uri.bucket)
            broken = UnexpectedClientError(
                message, code=error_code(error), **entry.locations.context()
            )
            broken.__cause__ = error
            self._resolve(entry, Broken(broken))
            return None
        if fetched is not None:
            self.stats.found_by_get += 1
            self._found(entry, Found(lane.kind, fetched=fetched, size=fetched.content_length))
        return None

    def _found(self, entry: Entry, found: Found) -> None:
        if self.detector is not None:
            self.detector.stats.safety_results += 1
            logger.debug("safety-net check found %s without a notification", entry.output)
        self._resolve(entry, found)

    def _satisfy(self, lanes: list[Lane], started: float) -> None:
        """Checks that started at ``started`` found nothing for the waits left in these lanes
        (one step per lane, whatever the number of its waits)."""
        for lane in lanes:
            if lane.group is None:
                continue
            members = lane.cohort.members
            if self.detector is not None and lane.kind == "output":
                self.detector.stats.safety_checks += len(members)
            self.stats.lane_checks += 1
            lane.satisfy(started)
            if lane.due() is None and lane.cohort.exhausted():
                for entry in list(members):
                    self._resolve(entry, Exhausted())

    def _transient(self, group: Group, due: list[Lane], error: BaseException) -> None:
        self.stats.transient_errors += 1
        for lane in due:
            for entry in lane.cohort.members:
                entry.last_error = error
        group.backoff = min(MAX_BACKOFF, max(0.05, group.backoff * 2))
        group.retry_at = self.clock() + group.backoff * (0.5 + self.rng.random() / 2)
        logger.debug(
            "transient error checking s3://%s/%s (%r); next try in %.2f s",
            group.bucket,
            group.prefix,
            error,
            group.backoff,
        )

    # -- the waiter's side ---------------------------------------------------------------------

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
                    await entry.event.wait()
                try:
                    outcome = await self.settle(entry, consume, max_bytes=max_bytes)
                except PredictorClosedError:
                    raise
                except Exception as error:  # closing interrupted the read
                    if self._closed:
                        raise _closed_error(entry) from error
                    raise
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

        def resolved(entry: Entry) -> None:  # holds no entry: the entry holds it
            self._to_settle.append((entry, consume, max_bytes))
            self._spawn_settlers()

        entry = self.register(locations, config, handoff_bytes=handoff, on_resolve=resolved)
        self._watchers[entry] = on_done
        self._expire_at_deadline(entry)
        return entry

    def _expire_at_deadline(self, entry: Entry) -> None:
        """End a watched entry at its hard deadline (the timer goes when the entry does)."""
        if entry.resolved:
            return
        at = entry.deadline
        entry.timer = Deadline(entry)
        heapq.heappush(self._deadlines, (at, next(self._sequence), entry.timer))
        self._wake()  # the scheduler may sleep past it

    def _spawn_settlers(self) -> None:
        """Enough reader tasks for the resolved watches, never more than the connection pool."""
        assert self._tasks is not None
        cap = max(1, int(self.transport.limiter.total_tokens))
        while self._settlers < min(cap, len(self._to_settle)):
            self._settlers += 1
            self._tasks.start_soon(self._settler)

    async def _settler(self) -> None:
        """Read the outcomes of resolved watches, one after another, until none is left."""
        try:
            while self._to_settle:
                entry, consume, max_bytes = self._to_settle.popleft()
                await self._settle_watched(entry, consume, max_bytes)
        finally:
            self._settlers -= 1

    async def _settle_watched(
        self, entry: Entry, consume: Consume[T], max_bytes: int | None
    ) -> None:
        try:
            outcome = await self.settle(entry, consume, max_bytes=max_bytes)
        except Exception as error:
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
        on_done = self._watchers.pop(entry, None)
        return None if on_done is None else on_done(outcome, error)

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
        if found is not None:
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

        After a notification the GETs take a free shared S3 slot or else a detection slot, so
        a notified result is not queued behind uploads (:meth:`.S3Transport.get` with
        ``found``); a result a check found reads as before (the listed-but-missing back-off
        counts on the shared limiter's pace).

        ``on_error`` is told of every S3 error of these reads (retried ones included).
        """
        notification = found.notification
        notified = notification is not None
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
            output = await self._fetch(locations, consume, max_bytes, on_error, found=notified)
            if output is None and notification is not None:
                logger.warning(
                    "notification says %s completed but the object is not there yet",
                    locations.output,
                )
            return None if output is None else Completed(output)
        # A failure: the output wins if both exist (one GET, for failures only).
        output = await self._fetch(locations, consume, max_bytes, on_error, found=notified)
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
            failed = await self.failure(locations, on_error, found=notified)
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
                    locations, Found(kind, notification=held), consume, max_bytes=max_bytes
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


def _group_key(uri: S3Uri) -> tuple[str, str]:
    return uri.bucket, listing_prefix(uri)


def _kind_of(entry: Entry, bucket: str, key: str) -> ProbeKind:
    """Which of the entry's locations ``key`` (listed in ``bucket``) is."""
    output = entry.locations.output
    return "output" if output.key == key and output.bucket == bucket else "failure"
