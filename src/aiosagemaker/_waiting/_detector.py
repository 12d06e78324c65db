"""Detectors that are *told* of results, beside the engine's own S3 checks.

The engine finds results by listing and by per-object GETs (its scheduler, :mod:`._engine`);
a :class:`Detector` adds a source that announces them (SQS notifications:
:class:`NotificationDetector`). With one, the engine's S3 checks become a safety net every
:attr:`Detector.safety_interval` seconds; the engine knows nothing of SQS.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Protocol

from .._notifications._listener import NotificationStats, SqsListener, Waiter, routing_keys
from .._notifications._messages import Notification
from ._outcomes import ResultLocations

if TYPE_CHECKING:
    from .._notifications._queue import NotificationQueue
    from ._registry import Entry

__all__ = ["Detector", "NotificationDetector"]

_ACTIVE: weakref.WeakValueDictionary[str, SqsListener] = weakref.WeakValueDictionary()
"""Queue URL -> the listener reading it in this process (two would split the messages)."""


class Detector(Protocol):
    """A source of result announcements for the waiting engine."""

    @property
    def safety_interval(self) -> float:
        """Seconds between the engine's S3 checks of a wait while this detector runs."""
        ...

    @property
    def stats(self) -> NotificationStats:
        """What it did (the engine counts its safety-net checks and result reads here)."""
        ...

    async def start(self) -> None:
        """Start detecting (idempotent); before the first wait that relies on it."""
        ...

    async def aclose(self) -> None:
        """Stop; the engine calls it when it closes."""
        ...

    def attach(self, entry: Entry, *, use_held: bool) -> None:
        """Resolve ``entry`` (through ``entry.router``) when its result is announced;
        ``use_held``: an announcement that came before the wait counts too."""
        ...

    def detach(self, entry: Entry) -> None:
        """Stop routing to ``entry`` (idempotent)."""
        ...

    def lookup(self, locations: ResultLocations) -> Notification | None:
        """An announcement already held for ``locations`` (a single check reads it)."""
        ...

    def silence(self) -> str:
        """A sentence for a timeout: no announcement came, and where it was expected."""
        ...


class NotificationDetector:
    """SQS notifications (a :class:`~aiosagemaker.NotificationQueue`) as a :class:`Detector`.

    One listener per queue in a process: a second one would split the messages.
    """

    def __init__(self, source: NotificationQueue, sqs: Any) -> None:
        self.source = source
        self.listener = source.listener(sqs)

    @property
    def safety_interval(self) -> float:
        return self.source.safety_poll_interval

    @property
    def stats(self) -> NotificationStats:
        return self.source.stats

    async def start(self) -> None:
        other = _ACTIVE.get(self.source.queue_url)
        if other is not None and other is not self.listener and other.running:
            raise ValueError(
                f"the notification queue {self.source.queue_url} is already read by another "
                "predictor in this process; SQS would split the notifications between them. "
                "Give each predictor its own queue"
            )
        await self.listener.start()
        _ACTIVE[self.source.queue_url] = self.listener

    async def aclose(self) -> None:
        await self.listener.aclose()
        if _ACTIVE.get(self.source.queue_url) is self.listener:
            del _ACTIVE[self.source.queue_url]

    def attach(self, entry: Entry, *, use_held: bool) -> None:
        locations = entry.locations
        entry.routing_keys = routing_keys(entry.output, entry.failure, locations.inference_id)
        self.listener.attach(entry, use_held=use_held)

    def detach(self, entry: Entry) -> None:
        self.listener.unregister(entry)

    def lookup(self, locations: ResultLocations) -> Notification | None:
        output = str(locations.output)
        failure = None if locations.failure is None else str(locations.failure)
        probe = Waiter(routing_keys(output, failure, locations.inference_id), output, failure)
        return self.listener.lookup(probe)

    def silence(self) -> str:
        return (
            f"No notification for it arrived on {self.source.queue_url} either (is the "
            "queue subscribed to the endpoint's SuccessTopic and ErrorTopic?)."
        )
