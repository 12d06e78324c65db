"""The registry of pending waits: registering, joining cohorts, leaving them, waiting again.

:class:`Registry` is the part of :class:`~._engine.WaitingEngine` that keeps the waits: an
entry joins the open :class:`~._registry.Cohort` of its groups and config (or starts one),
lays its keys in its groups, and leaves them when it is resolved or unregistered.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from typing import Any

from .._config import WaiterConfig
from .._s3 import S3Uri
from ._budget import RequestBudget
from ._checks import EngineStats
from ._collect import HANDOFF_BYTES, Watcher
from ._detector import Detector
from ._outcomes import ResultLocations
from ._registry import (
    Cohort,
    Deadline,
    Entry,
    Exhausted,
    Group,
    Lane,
    ProbeKind,
    Signal,
    listing_prefix,
)
from ._schedule import Schedule
from ._siblings import Family, parent_prefix

__all__ = ["FIRST_CHECK_HOLD", "JOIN_WINDOW", "Registry"]

JOIN_WINDOW = 0.1
"""Most seconds after a cohort's start that a new wait may still join it (its checks then
come up to this much early; its own deadline stays its own)."""


FIRST_CHECK_HOLD = 1.0
"""Most seconds the first check of waits joining a group that is being checked already waits
for that group's next check (see :func:`_first_hold`)."""


class Registry:
    """The engine's pending waits, their cohorts and groups."""

    detector: Detector | None
    clock: Callable[[], float]
    rng: random.Random
    failure_every: int
    budget: RequestBudget
    stats: EngineStats
    _groups: dict[tuple[str, str], Group]
    _families: dict[tuple[str, str], Family]
    _open: dict[tuple[Any, ...], Cohort]
    _pending: set[Entry]
    _touched: dict[Group, None]
    _watchers: dict[Entry, Watcher]
    _deadlines: list[tuple[float, int, Deadline]]
    _sequence: itertools.count[int]

    def _ensure_running(self) -> None:
        raise NotImplementedError

    def _wake(self) -> None:
        raise NotImplementedError

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
            self._touched[lane.group] = None
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
            group = self._group_for(uri)
            hold = _first_hold(cohort, group) if index == 0 else 0.0
            lane = Lane(cohort, kind, stride, index, hold)
            cohort.lanes.append(lane)
            group.add_lane(lane)
            self._touched[group] = None

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
            if group.size == 0:  # the scheduler drops it (or cancels its check)
                self._touched[group] = None
                if group.scope is not None:
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
        self.stats.rearms += 1
        self.budget.charge(misses)
        now = self.clock()
        cohort = Cohort(entry.schedule.copy())  # a cohort of its own, where it left off
        cohort.open = False
        entry.schedule = cohort.schedule
        self._lay_lanes(cohort, entry.locations, entry.positions)
        for lane in cohort.lanes:
            lane.satisfy(now)
            assert lane.group is not None
            lane.group.push(lane)  # at its new due time: the row _lay_lanes pushed is stale
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

    def _notified(self, entry: Entry, signal: Signal) -> None:
        self.stats.found_by_notification += 1
        self._resolve(entry, signal)

    def _group_for(self, uri: S3Uri) -> Group:
        key = _group_key(uri)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = Group(*key)
            parent = parent_prefix(group.prefix)
            if parent is not None:
                family = self._families.get((group.bucket, parent))
                if family is None:
                    family = self._families[group.bucket, parent] = Family(group.bucket, parent)
                family.groups[group] = None
                group.family = family
        return group

    def _resolve(self, entry: Entry, signal: Signal) -> None:
        """Take the entry out of the registry, then resolve it (only an active one)."""
        if not entry.active:
            return
        self._detach(entry)
        entry.resolve(signal)

    def _expire_at_deadline(self, entry: Entry) -> None:
        """End a watched entry at its hard deadline (the timer goes when the entry does)."""
        if entry.resolved:
            return
        at = entry.deadline
        entry.timer = Deadline(entry)
        heapq.heappush(self._deadlines, (at, next(self._sequence), entry.timer))
        self._wake()  # the scheduler may sleep past it


def _first_hold(cohort: Cohort, group: Group) -> float:
    """How long a new cohort's first check may wait for the group's next regular check.

    A group whose waits are being checked already (it has lanes and was checked) is looked at
    again within an interval anyway: the first check of waits joining it rides along with that
    check, :data:`FIRST_CHECK_HOLD` seconds at most and never past the cohort's own second
    check, instead of a listing of its own a moment after each new cohort (10 LISTs a second
    per group while a burst of submissions registers, each finding nothing). A lone wait, or
    the first of its group, is checked at once.
    """
    schedule = cohort.schedule
    first, second = schedule.time(0), schedule.time(1)
    if first != schedule.start or second is None or not group.lanes:
        return 0.0
    if group.last_check == float("-inf"):
        return 0.0
    return min(FIRST_CHECK_HOLD, second - first)


def _group_key(uri: S3Uri) -> tuple[str, str]:
    return uri.bucket, listing_prefix(uri)
