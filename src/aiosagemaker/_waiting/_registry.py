"""The registry of pending waits: entries, their probes, and the groups that list them.

An :class:`Entry` is one caller waiting for one inference: plain data. Waits registered for
the same groups with the same config before their first check share a :class:`Cohort` (one
schedule); a cohort has a :class:`Lane` per location kind (the output, and the failure file
when there is one), each in the :class:`Group` of its (bucket, "directory") so that one LIST
finds every wait of the group. Checks are scheduled per lane, so a check costs O(lanes due +
waits found), not O(waits pending). An entry is resolved exactly once (:meth:`Entry.resolve`);
the waiter then reads :attr:`Entry.signal`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import anyio

from .._exceptions import AsyncInferenceError
from .._notifications._messages import Key, Notification
from .._s3 import Fetched, S3Uri
from ._outcomes import ResultLocations
from ._schedule import Schedule

if TYPE_CHECKING:
    from ._siblings import Family

__all__ = [
    "Broken",
    "Cohort",
    "Deadline",
    "Entry",
    "Exhausted",
    "Found",
    "Group",
    "Lane",
    "Signal",
]

ProbeKind = Literal["output", "failure"]


@dataclass(frozen=True, slots=True)
class Found:
    """A location was seen to exist (by a LIST, a GET or a notification).

    ``fetched`` holds the body when a probing GET already read it; ``size`` is the object's
    size when known; ``announcement`` is what a detector was told when one announced it.
    """

    kind: ProbeKind
    fetched: Fetched[bytes] | Fetched[tuple[bytes, bool]] | None = None
    size: int | None = None
    announcement: Notification | None = None


@dataclass(frozen=True, slots=True)
class Exhausted:
    """Every scheduled check ran and found nothing."""


@dataclass(frozen=True, slots=True)
class Broken:
    """Waiting cannot go on: ``error`` is what the caller gets."""

    error: AsyncInferenceError


Signal = Found | Exhausted | Broken

_SEQUENCE = itertools.count()


class Cohort:
    """Waits that share one schedule: registered for the same groups with the same config
    before the first check of any of them ran.

    A cohort has a :class:`Lane` per location kind (the output, and the failure file when its
    waits have one); a check is scheduled, taken and counted per lane, not per wait, so a
    check costs the same however many waits it serves. ``members`` are the waits still
    pending; an entry leaving it drops its link to the cohort, and the last one to leave
    takes the lanes off their groups: nothing cyclic outlives the waits.
    """

    __slots__ = ("lanes", "members", "open", "schedule")

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.members: set[Entry] = set()
        self.lanes: list[Lane] = []
        self.open = True
        """Whether a new wait may still join (no check of the cohort has been taken yet)."""

    @property
    def attempts(self) -> int:
        """The output checks the cohort made."""
        return next((lane.index for lane in self.lanes if lane.kind == "output"), 0)

    def exhausted(self) -> bool:
        """Whether no lane has a check left."""
        return all(lane.due() is None for lane in self.lanes)

    def release(self) -> None:
        """Every lane may still ask for the time of the check before its own: forget older."""
        if self.lanes:
            self.schedule.release(min(lane.index for lane in self.lanes) - 1)


class Lane:
    """One location kind of a :class:`Cohort` in its :class:`Group`, with its place in the
    cohort's schedule.

    ``stride`` > 1 makes a failure lane look only at every n-th scheduled check (and the
    last one). The next due time is kept, not recomputed: the scheduler asks often.
    """

    __slots__ = (
        "_due",
        "_previous",
        "_urgent",
        "cohort",
        "group",
        "hold",
        "index",
        "kind",
        "stride",
    )

    def __init__(
        self, cohort: Cohort, kind: ProbeKind, stride: int = 1, index: int = 0, hold: float = 0.0
    ) -> None:
        self.cohort = cohort
        self.kind: ProbeKind = kind
        self.stride = stride
        self.index = index
        self.hold = hold
        """Seconds its first check may wait for its group's next regular check (0: it is
        urgent, batched :data:`~._engine.FIRST_BATCH` at most)."""
        self.group: Group | None = None
        self._due: float | None = None
        self._previous: float | None = None
        self._urgent = True
        self._refresh()

    def __repr__(self) -> str:
        return f"<Lane {self.kind} #{self.index} waits={len(self.cohort.members)}>"

    def _refresh(self) -> None:
        """Move to the next check this lane makes (skipping strided ones), cache its time."""
        time = self.cohort.schedule.time
        index = self.index
        while True:
            due = time(index)
            last = due is not None and time(index + 1) is None
            if due is None or last or self.stride == 1 or (index + 1) % self.stride == 0:
                break
            index += 1
        self.index = index
        self._due = due
        self._previous = None if index == 0 else time(index - 1)
        self._urgent = (index == 0 and not self.hold) or last

    def due(self) -> float | None:
        """When this lane's next check is due (None: no check is left)."""
        return self._due

    def urgent(self) -> bool:
        """The first and the last check are never put off to batch them with others."""
        return self._urgent

    def interval(self) -> float:
        """The current spacing of this lane's checks (0 for the first)."""
        if self._due is None:
            return 0.0
        if self._previous is None:
            return self.hold if self.index == 0 else 0.0
        return self._due - self._previous

    def uri(self, entry: Entry) -> S3Uri:
        """The location this lane checks for ``entry``."""
        if self.kind == "output":
            return entry.locations.output
        failure = entry.locations.failure
        assert failure is not None
        return failure

    def satisfy(self, started: float) -> None:
        """A check that started at ``started`` found nothing: it counts as one scheduled check.

        A lane more than a whole interval behind (after an outage, say) skips the checks it
        missed but one, so that it catches up with one check instead of a burst.
        """
        if self._due is None or self._due > started:
            return
        time = self.cohort.schedule.time
        index = self.index + 1
        while (after := time(index + 1)) is not None and after <= started:
            index += 1
        self.index = index
        self._refresh()
        self.cohort.release()


class Deadline:
    """The hard deadline of a watched entry in the engine's timer heap; ``cancel`` lets the
    entry go at once (the heap row stays until its time, holding nothing)."""

    __slots__ = ("entry",)

    def __init__(self, entry: Entry) -> None:
        self.entry: Entry | None = entry

    def cancel(self) -> None:
        self.entry = None


class Entry:
    """One caller's wait for one inference; resolved once.

    Plain data: its cohort (while pending; the link is dropped when it leaves), its own
    start and hard deadline, and what it ended with.
    """

    __slots__ = (
        "_waiter",
        "active",
        "cohort",
        "deadline",
        "handoff_bytes",
        "last_error",
        "locations",
        "on_resolve",
        "positions",
        "router",
        "routing_keys",
        "schedule",
        "signal",
        "started",
        "timer",
        "unread",
    )

    def __init__(
        self,
        locations: ResultLocations,
        schedule: Schedule,
        *,
        handoff_bytes: int,
        on_resolve: Callable[[Entry], None] | None = None,
        started: float | None = None,
        deadline: float | None = None,
    ) -> None:
        self.locations = locations
        self.schedule = schedule
        """The schedule it is checked on (its cohort's, shared)."""
        self.started = schedule.start if started is None else started
        self.deadline = schedule.hard_deadline if deadline is None else deadline
        """When the caller's wait ends at the latest (its own, not its cohort's)."""
        self.handoff_bytes = handoff_bytes
        self.on_resolve = on_resolve
        self._waiter: asyncio.Future[None] | None = None
        self.signal: Signal | None = None
        self.last_error: BaseException | None = None
        self.positions: tuple[int, ...] = ()
        """Where its lanes were in the schedule when it left its cohort (output first)."""
        self.active = False
        self.cohort: Cohort | None = None
        self.router: Callable[[Entry, Signal], None] | None = None
        self.routing_keys: list[Key] | None = None
        """Where a detector routes announcements for this wait (it sets them)."""
        self.timer: Deadline | None = None
        """The hard-deadline timer of a watched entry (cancelled when it is unregistered)."""
        self.unread: ProbeKind | None = None
        """Which object was found but could not be read (transient errors): looked for again."""

    @property
    def attempts(self) -> int:
        """The output checks made for this wait."""
        if self.cohort is not None:
            return self.cohort.attempts
        return self.positions[0] if self.positions else 0

    @property
    def resolved(self) -> bool:
        return self.signal is not None

    async def resolution(self) -> None:
        """Return once the entry is resolved (at once if it is): its one waiter's wait.

        A bare future, made on first use (watched entries never need one): 10,000 waits
        pending hold no event, deque or extra frame each.
        """
        if self.signal is not None:
            return
        waiter = self._waiter
        if waiter is None or waiter.done():  # a cancelled wait leaves a done one behind
            waiter = self._waiter = asyncio.get_running_loop().create_future()
        await waiter

    def resolve(self, signal: Signal) -> bool:
        """Set the signal once and wake the waiter; False when it was already resolved."""
        if self.signal is not None:
            return False
        self.signal = signal
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.on_resolve is not None:
            self.on_resolve(self)
        return True

    def rearm(self) -> None:
        """Forget the signal (it announced an object that is not there): wait again."""
        self.signal = None
        self._waiter = None

    # The notification listener's waiter protocol (see notifications._listener).
    @property
    def keys(self) -> list[Key]:
        return [] if self.routing_keys is None else self.routing_keys

    @property
    def output(self) -> str:
        return str(self.locations.output)

    @property
    def failure(self) -> str | None:
        failure = self.locations.failure
        return None if failure is None else str(failure)

    def accepts(self, notification: Notification) -> bool:
        """False when the notification names a different location than this wait's."""
        if notification.succeeded:
            return notification.output_location in (None, self.output)
        return notification.failure_location in (None, self.failure)

    def deliver(self, notification: Notification) -> None:
        """A notification announced this wait's outcome (called by the listener)."""
        kind: ProbeKind = "output" if notification.succeeded else "failure"
        found = Found(kind, announcement=notification)
        if self.router is not None:
            self.router(self, found)
        else:
            self.resolve(found)


class Group:
    """The pending waits under one (bucket, prefix): what one LIST of that prefix finds.

    ``keys`` maps each awaited key to its wait (or waits); the lanes of the cohorts checked
    here sit in two heaps by due time. Also what the engine learned about the prefix: the
    pages its last listing took, whether listing is allowed at all, and its error backoff.
    """

    __slots__ = (
        "arriving",
        "backoff",
        "bucket",
        "family",
        "heaps",
        "inflight",
        "keys",
        "keys_listed",
        "lanes",
        "last_check",
        "list_allowed",
        "pages",
        "prefix",
        "retry_at",
        "scope",
        "size",
        "wake_at",
    )

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.keys: dict[str, Entry | list[Entry]] = {}
        self.size = 0
        """Pending (wait, location) pairs in the group."""
        self.lanes: set[Lane] = set()
        # Two heaps: urgent checks (first and last) are never held back to batch them.
        self.heaps: dict[bool, list[tuple[float, int, Lane]]] = {True: [], False: []}
        self.inflight = False
        self.scope: anyio.CancelScope | None = None
        self.last_check = float("-inf")
        self.pages = 1
        self.keys_listed = 0
        self.arriving = False
        self.list_allowed = True
        self.backoff = 0.0
        self.retry_at = float("-inf")
        self.wake_at = float("inf")
        """When the scheduler looks at the group next (inf: when something changes)."""
        self.family: Family | None = None
        """The pending groups under the same parent prefix (None: it has no parent)."""

    def __repr__(self) -> str:
        return f"<Group s3://{self.bucket}/{self.prefix} waits={self.size}>"

    def add_lane(self, lane: Lane) -> None:
        lane.group = self
        self.lanes.add(lane)
        self.push(lane)

    def remove_lane(self, lane: Lane) -> None:
        self.lanes.discard(lane)
        lane.group = None

    def add(self, key: str, entry: Entry) -> None:
        """``entry`` awaits ``key`` in this group."""
        held = self.keys.get(key)
        if held is None:
            self.keys[key] = entry
        elif isinstance(held, list):
            held.append(entry)
        else:
            self.keys[key] = [held, entry]
        self.size += 1

    def remove(self, key: str, entry: Entry) -> None:
        held = self.keys.get(key)
        if held is entry:
            del self.keys[key]
        elif isinstance(held, list) and entry in held:
            held.remove(entry)
            if len(held) == 1:
                self.keys[key] = held[0]
        else:
            return
        self.size -= 1

    def waiting_for(self, key: str) -> list[Entry]:
        """The waits that await ``key`` here."""
        held = self.keys.get(key)
        if held is None:
            return []
        return list(held) if isinstance(held, list) else [held]

    def entries(self) -> list[Entry]:
        """Every wait pending in the group (once each)."""
        seen: dict[int, Entry] = {}
        for key in list(self.keys):
            for entry in self.waiting_for(key):
                seen[id(entry)] = entry
        return list(seen.values())

    def push(self, lane: Lane) -> None:
        """(Re)schedule ``lane`` at its next due time; stale heap rows are skipped later."""
        due = lane.due()
        if due is not None:
            heapq.heappush(self.heaps[lane.urgent()], (due, next(_SEQUENCE), lane))

    def _valid(self, row: tuple[float, int, Lane], urgent: bool) -> bool:
        due, _, lane = row
        return lane.group is self and lane.due() == due and lane.urgent() == urgent

    def earliest(self, urgent: bool) -> Lane | None:
        """The (urgent or regular) lane due first; drops stale heap rows on the way."""
        heap = self.heaps[urgent]
        while heap and not self._valid(heap[0], urgent):
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    def pop_due(self, now: float) -> list[Lane]:
        """Every lane due by ``now``, each once, taken off the heaps (its cohort closes)."""
        due: list[Lane] = []
        seen: set[int] = set()
        for urgent, heap in self.heaps.items():
            while heap and heap[0][0] <= now:
                row = heapq.heappop(heap)
                if self._valid(row, urgent) and id(row[2]) not in seen:
                    seen.add(id(row[2]))
                    row[2].cohort.open = False
                    due.append(row[2])
        return due


def listing_prefix(uri: S3Uri) -> str:
    """The "directory" of a location: everything up to and including its last ``/``."""
    head, slash, _ = uri.key.rpartition("/")
    return head + slash if slash else ""
