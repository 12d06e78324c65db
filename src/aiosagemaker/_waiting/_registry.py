"""The registry of pending waits: entries, their probes, and the groups that list them.

An :class:`Entry` is one caller waiting for one inference. It has a :class:`Probe` per location
(the output, and the failure file when there is one); each probe belongs to the
:class:`Group` of its (bucket, "directory") so that one LIST finds every probe of the group.
An entry is resolved exactly once (:meth:`Entry.resolve`); the waiter then reads
:attr:`Entry.signal`.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import anyio

from .._exceptions import AsyncInferenceError
from .._notifications._messages import Key, Notification
from .._s3 import Fetched, S3Uri
from ._outcomes import ResultLocations
from ._schedule import Schedule

__all__ = ["Broken", "Deadline", "Entry", "Exhausted", "Found", "Group", "Probe", "Signal"]

ProbeKind = Literal["output", "failure"]


@dataclass(frozen=True, slots=True)
class Found:
    """A location was seen to exist (by a LIST, a GET or a notification).

    ``fetched`` holds the body when a probing GET already read it; ``size`` is the object's
    size when known; ``notification`` is set when a notification announced it.
    """

    kind: ProbeKind
    fetched: Fetched[bytes] | Fetched[tuple[bytes, bool]] | None = None
    size: int | None = None
    notification: Notification | None = None


@dataclass(frozen=True, slots=True)
class Exhausted:
    """Every scheduled check ran and found nothing."""


@dataclass(frozen=True, slots=True)
class Broken:
    """Waiting cannot go on: ``error`` is what the caller gets."""

    error: AsyncInferenceError


Signal = Found | Exhausted | Broken

_SEQUENCE = itertools.count()


class Probe:
    """One location of one entry, with its place in the entry's schedule.

    ``stride`` > 1 makes a failure probe look only at every n-th scheduled check (and the
    last one). The next due time is kept, not recomputed: the scheduler asks often.
    """

    __slots__ = (
        "_due",
        "_previous",
        "_urgent",
        "entry",
        "group",
        "index",
        "kind",
        "scope",
        "stride",
        "uri",
    )

    def __init__(self, entry: Entry, kind: ProbeKind, uri: S3Uri, stride: int = 1) -> None:
        self.entry = entry
        self.kind: ProbeKind = kind
        self.uri = uri
        self.stride = stride
        self.index = 0
        self.group: Group | None = None
        self.scope: anyio.CancelScope | None = None
        self._due: float | None = None
        self._previous: float | None = None
        self._urgent = True
        self._refresh()

    def _refresh(self) -> None:
        """Move to the next check this probe makes (skipping strided ones), cache its time."""
        time = self.entry.schedule.time
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
        self._urgent = index == 0 or last

    def due(self) -> float | None:
        """When this probe's next check is due (None: no check is left)."""
        return self._due

    def urgent(self) -> bool:
        """The first and the last check are never put off to batch them with others."""
        return self._urgent

    def interval(self) -> float:
        """The current spacing of this probe's checks (0 for the first)."""
        if self._due is None or self._previous is None:
            return 0.0
        return self._due - self._previous

    def satisfy(self, started: float) -> None:
        """A check that started at ``started`` found nothing: it counts as one scheduled check.

        A probe more than a whole interval behind (after an outage, say) skips the checks it
        missed but one, so that it catches up with one check instead of a burst.
        """
        if self._due is None or self._due > started:
            return
        entry = self.entry
        schedule = entry.schedule
        time = schedule.time
        index = self.index + 1
        while (after := time(index + 1)) is not None and after <= started:
            index += 1
        self.index = index
        self._refresh()
        if self.kind == "output":
            entry.attempts = max(entry.attempts, self.index)
        # every probe may still ask for the time of the check before its own
        schedule.release(min(probe.index for probe in entry.probes) - 1)


class Deadline:
    """The hard deadline of a watched entry in the engine's timer heap; ``cancel`` lets the
    entry go at once (the heap row stays until its time, holding nothing)."""

    __slots__ = ("entry",)

    def __init__(self, entry: Entry) -> None:
        self.entry: Entry | None = entry

    def cancel(self) -> None:
        self.entry = None


class Entry:
    """One caller's wait for one inference; resolved once."""

    __slots__ = (
        "_event",
        "active",
        "attempts",
        "handoff_bytes",
        "last_error",
        "listener_keys",
        "locations",
        "on_resolve",
        "probes",
        "router",
        "schedule",
        "signal",
        "timer",
    )

    def __init__(
        self,
        locations: ResultLocations,
        schedule: Schedule,
        *,
        handoff_bytes: int,
        failure_stride: int = 1,
        on_resolve: Callable[[Entry], None] | None = None,
    ) -> None:
        self.locations = locations
        self.schedule = schedule
        self.handoff_bytes = handoff_bytes
        self.on_resolve = on_resolve
        self._event: anyio.Event | None = None
        self.signal: Signal | None = None
        self.last_error: BaseException | None = None
        self.attempts = 0
        self.active = False
        self.router: Callable[[Entry, Signal], None] | None = None
        self.listener_keys: list[Key] = []
        self.timer: Deadline | None = None
        """The hard-deadline timer of a watched entry (cancelled when it is unregistered)."""
        self.probes = [Probe(self, "output", locations.output)]
        if locations.failure is not None:
            self.probes.append(Probe(self, "failure", locations.failure, failure_stride))

    @property
    def resolved(self) -> bool:
        return self.signal is not None

    @property
    def event(self) -> anyio.Event:
        """Set once the entry is resolved (made on first use: watched entries never need it)."""
        if self._event is None:
            self._event = anyio.Event()
            if self.signal is not None:
                self._event.set()
        return self._event

    def resolve(self, signal: Signal) -> bool:
        """Set the signal once and wake the waiter; False when it was already resolved."""
        if self.signal is not None:
            return False
        self.signal = signal
        if self._event is not None:
            self._event.set()
        if self.on_resolve is not None:
            self.on_resolve(self)
        return True

    def rearm(self) -> None:
        """Forget the signal (it announced an object that is not there): wait again."""
        self.signal = None
        self._event = None

    def exhausted(self) -> bool:
        """Whether no probe has a check left."""
        return all(probe.due() is None for probe in self.probes)

    # The notification listener's waiter protocol (see notifications._listener).
    @property
    def keys(self) -> list[Key]:
        return self.listener_keys

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
        found = Found(kind, notification=notification)
        if self.router is not None:
            self.router(self, found)
        else:
            self.resolve(found)


class Group:
    """The pending probes under one (bucket, prefix): what one LIST of that prefix finds.

    Also what the engine learned about the prefix: the pages its last listing took, whether
    listing is allowed at all, and its error backoff.
    """

    __slots__ = (
        "arriving",
        "backoff",
        "bucket",
        "heaps",
        "inflight",
        "keys_listed",
        "last_check",
        "list_allowed",
        "pages",
        "prefix",
        "probes",
        "retry_at",
        "scope",
        "size",
    )

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.probes: dict[str, list[Probe]] = {}
        self.size = 0
        # Two heaps: urgent checks (first and last) are never held back to batch them.
        self.heaps: dict[bool, list[tuple[float, int, Probe]]] = {True: [], False: []}
        self.inflight = False
        self.scope: anyio.CancelScope | None = None
        self.last_check = float("-inf")
        self.pages = 1
        self.keys_listed = 0
        self.arriving = False
        self.list_allowed = True
        self.backoff = 0.0
        self.retry_at = float("-inf")

    def __repr__(self) -> str:
        return f"<Group s3://{self.bucket}/{self.prefix} probes={self.size}>"

    def add(self, probe: Probe) -> None:
        probe.group = self
        self.probes.setdefault(probe.uri.key, []).append(probe)
        self.size += 1
        self.push(probe)

    def remove(self, probe: Probe) -> None:
        probes = self.probes.get(probe.uri.key)
        if probes is not None and probe in probes:
            probes.remove(probe)
            self.size -= 1
            if not probes:
                del self.probes[probe.uri.key]
        probe.group = None

    def push(self, probe: Probe) -> None:
        """(Re)schedule ``probe`` at its next due time; stale heap rows are skipped later."""
        due = probe.due()
        if due is not None:
            heapq.heappush(self.heaps[probe.urgent()], (due, next(_SEQUENCE), probe))

    def _valid(self, row: tuple[float, int, Probe], urgent: bool) -> bool:
        due, _, probe = row
        return probe.group is self and probe.due() == due and probe.urgent() == urgent

    def earliest(self, urgent: bool) -> Probe | None:
        """The (urgent or regular) probe due first; drops stale heap rows on the way."""
        heap = self.heaps[urgent]
        while heap and not self._valid(heap[0], urgent):
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    def pop_due(self, now: float) -> list[Probe]:
        """Every probe due by ``now``, each once, taken off the heaps."""
        due: list[Probe] = []
        seen: set[int] = set()
        for urgent, heap in self.heaps.items():
            while heap and heap[0][0] <= now:
                row = heapq.heappop(heap)
                if self._valid(row, urgent) and id(row[2]) not in seen:
                    seen.add(id(row[2]))
                    due.append(row[2])
        return due

    def all_probes(self) -> Iterator[Probe]:
        for probes in list(self.probes.values()):
            yield from list(probes)


def listing_prefix(uri: S3Uri) -> str:
    """The "directory" of a location: everything up to and including its last ``/``."""
    head, slash, _ = uri.key.rpartition("/")
    return head + slash if slash else ""
