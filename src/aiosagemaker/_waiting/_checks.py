"""What an S3 check (:mod:`._listing`, :mod:`._probing`) needs of the engine that runs it.

A check detector looks for the waits of one :class:`~._registry.Group` whose lanes are due,
and reports through a :class:`CheckHost`: what it found, that a lane's check found nothing,
that S3 failed for a while, or that a wait cannot go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from .._s3 import S3Requests
from ._budget import RequestBudget

if TYPE_CHECKING:
    from ._registry import Entry, Group, Lane, Signal

__all__ = ["CheckHost", "Detection", "EngineStats"]

Detection = Literal["auto", "list", "get"]


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
    sibling_lists: int = 0
    """Listings of a parent prefix that checked several groups at once."""
    empty_lists: int = 0
    """Listings (all their pages) that found no awaited key."""
    probe_misses: int = 0
    """Probing GETs that found nothing."""
    rearms: int = 0
    """Waits sent back to waiting: what was found was not there when read, or could not be
    read (transient errors)."""


class CheckHost(Protocol):
    """The engine, as its check detectors see it."""

    transport: S3Requests
    budget: RequestBudget
    stats: EngineStats

    def found(self, entry: Entry, signal: Signal) -> None:
        """A check found the wait's object (or cannot go on: a :class:`~._registry.Broken`)."""
        ...

    def satisfy(self, lanes: list[Lane], started: float) -> None:
        """Checks that started at ``started`` found nothing more for these lanes."""
        ...

    def transient(self, group: Group, due: list[Lane], error: BaseException) -> None:
        """S3 failed in a way worth retrying: back the group off."""
        ...
