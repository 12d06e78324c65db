"""Per-object GET detector: one GET per due wait of a group; a GET that finds the object
reads it (up to the wait's handoff size) and its bytes are the result."""

from __future__ import annotations

from typing import Any

import anyio
from botocore.exceptions import BotoCoreError, ClientError

from .._aws_errors import describe_s3_fatal, error_code
from .._exceptions import UnexpectedClientError
from .._s3 import Fetched, ObjectTooLarge, read_all, read_prefix
from ._checks import CheckHost
from ._outcomes import FAILURE_TEXT_MAX_BYTES
from ._registry import Broken, Entry, Found, Group, Lane

__all__ = ["ProbingCheck"]


class ProbingCheck:
    """Finds a group's results with a GET per due wait (the engine passes itself to each
    check: nothing cyclic ties the two)."""

    async def check(self, host: CheckHost, group: Group, due: list[Lane], started: float) -> None:
        """GET each wait of the due lanes, at most as many at once as the connection limiter
        allows; the lanes' check counts once every GET answered (else it is retried)."""
        pending = [(lane, entry) for lane in due for entry in lane.cohort.members]
        pending.reverse()
        transient: list[BaseException] = []

        async def worker() -> None:
            while pending:
                lane, entry = pending.pop()
                if entry.cohort is lane.cohort and lane.group is group:
                    error = await self._get(host, lane, entry)
                    if error is not None:
                        transient.append(error)

        workers = max(1, min(len(pending), int(host.transport.limiter.total_tokens)))
        async with anyio.create_task_group() as tasks:
            for _ in range(workers):
                tasks.start_soon(worker)
        if transient:
            host.transient(group, [], transient[-1])
        else:
            group.backoff = 0.0
            host.satisfy(due, started)

    async def _get(self, host: CheckHost, lane: Lane, entry: Entry) -> BaseException | None:
        """One probing GET; returns the error when it was transient."""
        await host.budget.take()
        host.stats.probe_gets += 1
        uri = lane.uri(entry)
        try:
            if lane.kind == "failure":
                failure = await host.transport.get_once(uri, read_prefix(FAILURE_TEXT_MAX_BYTES))
                fetched: Fetched[Any] | None = failure
            else:
                fetched = await host.transport.get_once(
                    uri, read_all, max_bytes=entry.handoff_bytes
                )
        except ObjectTooLarge as large:  # left for the waiter to read (or refuse)
            host.stats.found_by_get += 1
            host.found(entry, Found(lane.kind, size=large.size if large.exact else None))
            return None
        except (BotoCoreError, ClientError, OSError) as error:
            if host.transport.note_error(error).retryable:
                entry.last_error = error
                return error
            message = describe_s3_fatal(error, uri, "read", uri.bucket)
            broken = UnexpectedClientError(
                message, code=error_code(error), **entry.locations.context()
            )
            broken.__cause__ = error
            host.found(entry, Broken(broken))
            return None
        if fetched is None:
            host.stats.probe_misses += 1
            return None
        host.stats.found_by_get += 1
        host.found(entry, Found(lane.kind, fetched=fetched, size=fetched.content_length))
        return None
