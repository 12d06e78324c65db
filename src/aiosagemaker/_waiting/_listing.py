"""Listing detector: one paginated ``ListObjectsV2`` of a group's prefix finds every wait of
the group whose object exists (the waiter then makes exactly one GET, which is the result).

A LIST is billed like :data:`LIST_PRICE` GETs, so a group is listed when more waits are due
than its last listing cost (pages x :data:`LIST_PRICE`); otherwise its due waits are GET
(:mod:`._probing`).
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError

from .._aws_errors import ACCESS_DENIED_CODES, ErrorKind, describe_s3_fatal, error_code
from .._exceptions import UnexpectedClientError
from ._checks import CheckHost, Detection
from ._registry import Broken, Entry, Found, Group, Lane, ProbeKind

__all__ = ["KEYS_PER_GET", "LIST_PRICE", "ListingCheck", "kind_of"]

logger = logging.getLogger("aiosagemaker")

LIST_PRICE = 12.5
"""A LIST request costs as much as this many GETs (S3 Standard: $0.005 vs $0.0004 / 1,000)."""
KEYS_PER_GET = 250
"""Listed keys that cost the client as much CPU to read as one GET request (measured: about
4 us per key with the library's lean listing reader, against about 1 ms per GET)."""


class ListingCheck:
    """Finds a group's results by listing its prefix, and decides when listing pays.

    It holds no engine: the engine passes itself (its :class:`~._checks.CheckHost`) to each
    check, so nothing cyclic ties the two.
    """

    def __init__(self, detection: Detection) -> None:
        self.detection: Detection = detection

    def extra_look(self, group: Group) -> bool:
        """Whether to list the group twice per interval instead of once.

        A LIST serves every wait of the group: while results are arriving (the last listing
        found some) and most of what it returns is still awaited, the extra looks find results
        sooner and use up no wait's checks. A group where nothing arrives is listed once per
        interval.
        """
        return (
            group.arriving and self.worth(group, group.size) and 2 * group.size >= group.keys_listed
        )

    def worth(self, group: Group, waits: int) -> bool:
        """Whether one LIST of the group costs less than a GET for each of ``waits``.

        Both in S3 requests (a LIST page is billed like :data:`LIST_PRICE` GETs) and in the
        client's CPU (parsing the keys the last listing returned, :data:`KEYS_PER_GET` of them
        per GET): a prefix holding many results already fetched is checked by GET instead.
        """
        detection = self.detection
        if detection == "get" or not group.list_allowed:
            return False
        if detection == "list":
            return True
        return waits > LIST_PRICE * group.pages and waits * KEYS_PER_GET > group.keys_listed

    async def check(self, host: CheckHost, group: Group, due: list[Lane], started: float) -> None:
        """List the group's prefix; every listed key that a wait awaits is found."""
        token: str | None = None
        pages = listed = found = 0
        while True:
            await host.budget.take()
            try:
                page = await host.transport.list_page(group.bucket, group.prefix, token)
            except (BotoCoreError, ClientError, OSError) as error:
                self._failed(host, group, due, error)
                return
            pages += 1
            listed += len(page.sizes)
            host.stats.list_pages += 1
            for key in page.sizes.keys() & group.keys.keys():
                for entry in group.waiting_for(key):
                    found += 1
                    host.stats.found_by_list += 1
                    kind = kind_of(entry, group.bucket, key)
                    host.found(entry, Found(kind, size=page.sizes[key]))
            if page.next_token is None:
                break
            if self.detection == "auto" and pages * LIST_PRICE >= group.size:
                # Already dearer than a GET per due wait: learn the cost, GET them instead.
                group.pages = pages + 1
                return
            token = page.next_token
        host.stats.lists += 1
        if not found:
            host.stats.empty_lists += 1
        group.pages = pages
        group.keys_listed = listed
        group.arriving = found > 0
        group.backoff = 0.0
        host.satisfy(due, started)

    def _failed(self, host: CheckHost, group: Group, due: list[Lane], error: BaseException) -> None:
        kind = host.transport.note_error(error)
        if kind.retryable:
            host.transient(group, due, error)
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
                host.found(entry, Broken(broken))


def kind_of(entry: Entry, bucket: str, key: str) -> ProbeKind:
    """Which of the entry's locations ``key`` (listed in ``bucket``) is."""
    output = entry.locations.output
    return "output" if output.key == key and output.bucket == bucket else "failure"
