"""The waiting engine: one per predictor, finding every pending result with shared checks.

Callers register an :class:`~._registry.Entry` (waits registered together share a
:class:`~._registry.Cohort`) and sleep on its event; one background task
(:meth:`WaitingEngine._run`) schedules checks per :class:`~._registry.Group` of locations and
resolves entries. Per group and per tick it picks the cheaper check detector: listing the
group's prefix (:mod:`._listing`) or a GET per due wait (:mod:`._probing`); while the
prefix above several pending groups is small, one listing of it checks them all
(:mod:`._siblings`). Detectors that are *told* of results (:mod:`._detector`) make these
checks a slow safety net. Every detection request takes a token from the
:class:`~._budget.RequestBudget` first; what a resolved entry found is read into its outcome
by :mod:`._collect`.

Checks are batched: the first and the last check of a wait run at most :data:`FIRST_BATCH`
seconds after they are due (the first check of waits joining a group that is being checked
already rides along with its next check instead, :data:`~._pending.FIRST_CHECK_HOLD` at
most); the others may wait until the group's previous check is one interval old, so a group
is checked about once per interval however many waits it holds.
Transient errors back a group off (doubling up to :data:`MAX_BACKOFF`) without using up any
wait's checks; the waiter's own deadline is what ends a wait, never a running request.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from .._exceptions import PredictorClosedError
from .._s3 import S3Requests
from ._budget import RequestBudget
from ._checks import Detection, EngineStats
from ._clock import Clock, as_clock
from ._collect import HANDOFF_BYTES, InlineBody, ResultReader, Watcher, _closed_error
from ._detector import Detector
from ._listing import KEYS_PER_GET, LIST_PRICE, ListingCheck
from ._pending import Registry
from ._probing import ProbingCheck
from ._registry import (
    Broken,
    Cohort,
    Deadline,
    Entry,
    Exhausted,
    Found,
    Group,
    Lane,
    Signal,
)
from ._siblings import Family, SiblingListing

__all__ = [
    "HANDOFF_BYTES",
    "KEYS_PER_GET",
    "LIST_PRICE",
    "Detection",
    "EngineStats",
    "InlineBody",
    "WaitingEngine",
]

logger = logging.getLogger("aiosagemaker")

StartSoon = Callable[[Callable[[], Coroutine[Any, Any, None]]], object]
"""An anyio task group's ``start_soon``, as far as the engine uses it."""

FIRST_BATCH = 0.1
"""Most seconds a first or last check waits to be batched with others of its group."""
MIN_GAP = 0.01
"""Least seconds between two checks of one group."""
MAX_BACKOFF = 1.0
"""Longest pause of a group after transient S3 errors."""
CHECK_TIMEOUT = 10.0
"""A check (all pages of a listing, or one round of GETs) that takes longer is abandoned."""


class WaitingEngine(Registry, ResultReader):
    """The registry of pending waits, its scheduler and its detectors, for one predictor.

    Args:
        transport: The predictor's S3 requests (an :class:`~.._s3_transport.S3Transport`).
        budget: The S3 request budget for detection requests.
        detection: ``"auto"`` (cheaper of listing and GET per group and tick), or force
            ``"list"`` / ``"get"``.
        failure_every: Probe failure locations only every n-th scheduled check (and the
            last) when checking by GET.
        detector: A source of result announcements (a :class:`~._detector.Detector`, SQS
            notifications say): it resolves entries; S3 checks become the slow safety net
            (every ``detector.safety_interval`` seconds, and at the end).
        clock: What the engine reads the time from and waits on (a :class:`~._clock.Clock`,
            or a plain monotonic time function); tests pass a fake one.
        start_soon: Where the engine's background work runs: its owner's anyio task group's
            ``start_soon`` (the predictor's; a test's). The engine starts one task there
            and ends it in :meth:`aclose`.
    """

    def __init__(
        self,
        transport: S3Requests,
        budget: RequestBudget,
        *,
        detection: Detection = "auto",
        failure_every: int = 1,
        detector: Detector | None = None,
        clock: Clock | Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        start_soon: StartSoon | None = None,
    ) -> None:
        self.transport = transport
        self.budget = budget
        self.detection: Detection = detection
        self.failure_every = failure_every
        self.detector = detector
        self.time = as_clock(clock)
        self.clock = self.time.now
        self.rng = rng or random.Random()
        self.listing = ListingCheck(detection)
        self.probing = ProbingCheck()
        self.siblings = SiblingListing()
        self.stats = EngineStats()
        self._groups: dict[tuple[str, str], Group] = {}
        self._families: dict[tuple[str, str], Family] = {}
        """The pending groups per parent prefix (see :mod:`._siblings`)."""
        self._soon: list[tuple[float, int, Group]] = []
        """When to look at each group again (a heap; a row whose time is not the group's
        ``wake_at`` any more is stale and skipped)."""
        self._touched: dict[Group, None] = {}
        """Groups whose lanes, checks or size changed since the scheduler last looked (in the
        order they changed: a set would look at them in an order of memory addresses)."""
        self._deadlines: list[tuple[float, int, Deadline]] = []
        """Hard deadlines of watched entries (a heap), expired by the scheduler."""
        self._sequence = itertools.count()
        self._open: dict[tuple[Any, ...], Cohort] = {}
        """The latest cohort per (groups, config), which new waits may join while it is open."""
        self._start_soon = start_soon
        self._scope = anyio.CancelScope()
        self._stopped: anyio.Event | None = None
        """Set when the scheduler has stopped (None: it was never started)."""
        self._tasks: anyio.abc.TaskGroup | None = None
        self._to_settle: deque[Entry] = deque()
        self._settlers = 0
        self._wakeup = anyio.Event()
        self._closed = False
        self._pending: set[Entry] = set()
        """Registered entries (waits and watches): settled with PredictorClosedError at close."""
        self._watchers: dict[Entry, Watcher] = {}
        """Watches whose ``on_done`` has not been called yet."""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the scheduler in the owner's task group (``start_soon``), once."""
        self._ensure_running()

    def _ensure_running(self) -> None:
        if self._closed:
            raise PredictorClosedError(
                "the predictor is closed; reopen it (async with) to wait again"
            )
        if self._stopped is not None:
            return
        if self._start_soon is None:
            raise RuntimeError(
                "the waiting engine has no task group to run in: pass start_soon= (an anyio "
                "task group's start_soon) when making it"
            )
        self._stopped = anyio.Event()
        self._start_soon(self._supervise)

    async def _supervise(self) -> None:
        """Run the scheduler until closed; it must not stop while open: restart it."""
        assert self._stopped is not None
        try:
            with self._scope:
                while not self._closed:
                    try:
                        await self._run()
                    except Exception as error:
                        logger.error("waiting engine stopped (%r); restarting", error)
                        for group in self._groups.values():
                            group.inflight = False
                            group.scope = None
                            for lane in list(group.lanes):
                                group.push(lane)
                            self._touched[group] = None
        finally:
            self._stopped.set()

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
        self._scope.cancel()
        if self._stopped is not None:
            await self._stopped.wait()
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

    # -- the scheduler -----------------------------------------------------------------------

    async def _run(self) -> None:
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            soon = self._soon
            while True:
                # Only the groups that changed or whose time came: O(groups due), not O(all).
                now = self.clock()
                touched, self._touched = self._touched, {}
                for group in touched:
                    self._look(group, now, tasks)
                while soon and soon[0][0] <= now:
                    at, _, group = heapq.heappop(soon)
                    if at == group.wake_at:
                        self._look(group, now, tasks)
                wake = min(soon[0][0] if soon else math.inf, self._expire_due(now))
                self._wakeup = anyio.Event()
                with self.time.move_on_at(wake):
                    await self._wakeup.wait()

    def _look(self, group: Group, now: float, tasks: anyio.abc.TaskGroup) -> None:
        """Dispatch the group (or drop it when empty) and note when to look at it again."""
        if group.size == 0 and not group.inflight:
            key = (group.bucket, group.prefix)
            if self._groups.get(key) is group:
                del self._groups[key]
            family, group.family = group.family, None
            if family is not None:
                family.groups.pop(group, None)
                if not family.groups:
                    self._families.pop((family.bucket, family.prefix), None)
            group.wake_at = math.inf
            return
        wake = self._dispatch(group, now, tasks)
        if wake != group.wake_at:
            group.wake_at = wake
            if wake < math.inf:
                heapq.heappush(self._soon, (wake, next(self._sequence), group))

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
            if self.listing.extra_look(group):
                start = min(start, group.last_check + max(MIN_GAP, gap / 2))
        start = max(start, group.retry_at)
        if start > now:
            return start
        due_probes = group.pop_due(now)
        if due_probes:
            waits = sum(len(lane.cohort.members) for lane in due_probes)
            listing = self.listing.worth(group, waits)
        elif self.listing.extra_look(group):
            listing = True
        else:  # nothing due after all (cannot happen by the rules above): look again soon
            return now + MIN_GAP
        family = group.family
        if family is not None and self._lists_siblings(group, family, due_probes, listing):
            self._start_family(group, family, due_probes, now, tasks)
            return math.inf
        group.inflight = True
        group.last_check = now
        tasks.start_soon(self._check, group, due_probes, listing, now)
        return math.inf

    def _lists_siblings(self, group: Group, family: Family, due: list[Lane], listing: bool) -> bool:
        """Whether to check ``group`` by listing its parent (with its siblings): the parent
        costs no more pages than the group's own listing, and a listing pays for the group,
        or for the waits of all the groups it serves."""
        if self.detection == "get" or not group.list_allowed or not family.serves(group):
            return False
        if listing:
            return True
        waits = sum(sibling.size for sibling in family.groups if not sibling.inflight)
        return self.listing.worth(group, waits) or waits > LIST_PRICE * family.pages

    def _start_family(
        self,
        group: Group,
        family: Family,
        due: list[Lane],
        now: float,
        tasks: anyio.abc.TaskGroup,
    ) -> None:
        """Take the lanes due in ``group`` and in each idle sibling, and list their parent."""
        lanes = {group: due}
        for sibling in family.groups:
            if sibling is group or sibling.inflight or sibling.size == 0:
                continue
            if not sibling.list_allowed or sibling.retry_at > now:
                continue
            lanes[sibling] = sibling.pop_due(now)
        previous = {sibling: sibling.last_check for sibling in lanes}
        for sibling in lanes:
            sibling.inflight = True
            sibling.last_check = now
        tasks.start_soon(self._check_family, family, group, lanes, previous, now)

    async def _check_family(
        self,
        family: Family,
        lead: Group,
        lanes: dict[Group, list[Lane]],
        previous: dict[Group, float],
        started: float,
    ) -> None:
        done = False
        try:
            with self.time.move_on_at(started + CHECK_TIMEOUT) as timer:
                done = await self.siblings.check(self, family, lead, lanes, started)
            if timer.cancelled_caught:
                done = True
                error = TimeoutError(f"no S3 answer in {CHECK_TIMEOUT} s")
                for group, due in lanes.items():
                    self.transient(group, due, error)
        except Exception as error:  # never let one check stop the engine: retry it later
            logger.error("listing %r failed unexpectedly: %r", family, error, exc_info=True)
            done = True
            for group, due in lanes.items():
                self.transient(group, due, error)
        finally:
            for group, due in lanes.items():
                if not done:  # given up: each group is checked on its own, as it was due
                    group.last_check = previous[group]
                self._check_ended(group, due)
            self._wake()

    async def _check(self, group: Group, due: list[Lane], listing: bool, started: float) -> None:
        try:
            with anyio.CancelScope() as scope:
                group.scope = scope
                with self.time.move_on_at(started + CHECK_TIMEOUT) as timer:
                    detector = self.listing if listing else self.probing
                    await detector.check(self, group, due, started)
                if timer.cancelled_caught:
                    self.transient(group, due, TimeoutError(f"no S3 answer in {CHECK_TIMEOUT} s"))
        except Exception as error:  # never let one check stop the engine: retry it later
            logger.error("checking %r failed unexpectedly: %r", group, error, exc_info=True)
            self.transient(group, due, error)
        finally:
            group.scope = None
            self._check_ended(group, due)
            self._wake()

    def _check_ended(self, group: Group, due: list[Lane]) -> None:
        """The group's check is over: its due lanes go back on its heaps (at their next
        check) and the scheduler looks at it again."""
        group.inflight = False
        for lane in due:
            if lane.group is group:
                group.push(lane)
        self._touched[group] = None

    # -- what the check detectors report (their CheckHost) ----------------------------------

    def found(self, entry: Entry, signal: Signal) -> None:
        if isinstance(signal, Found) and self.detector is not None:
            self.detector.stats.safety_results += 1
            logger.debug("safety-net check found %s without a notification", entry.output)
        self._resolve(entry, signal)

    def satisfy(self, lanes: list[Lane], started: float) -> None:
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

    def transient(self, group: Group, due: list[Lane], error: BaseException) -> None:
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
