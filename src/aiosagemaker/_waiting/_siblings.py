"""Sibling listing: one ``ListObjectsV2`` of a parent prefix checks every pending group under it.

A predictor spreads its results over sub-prefixes (one per 1,000 submissions, for its outputs
and for its failure files), so many groups may wait under one parent. While the parent is
small (its last listing took no more pages than the group's own), one listing of the parent
serves all of its groups at once: failure prefixes, which are nearly always empty, cost one
LIST per round instead of one per sub-prefix. Every key is listed (no ``StartAfter``), so a
key that lands out of order is found like any other; a parent that has grown past the group's
own listing is abandoned after that many pages and its groups are listed one by one again.
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError

from ._checks import CheckHost
from ._listing import kind_of
from ._registry import Found, Group, Lane

__all__ = ["Family", "SiblingListing", "parent_prefix"]

logger = logging.getLogger("aiosagemaker")


def parent_prefix(prefix: str) -> str | None:
    """The "directory" above ``prefix`` ("a/b/c/" -> "a/b/"); None at the top or the root
    (listing a whole bucket is never a sibling listing)."""
    head, slash, _ = prefix.rstrip("/").rpartition("/")
    return head + slash if head else None


class Family:
    """The pending groups under one parent prefix, and what listing the parent costs."""

    __slots__ = ("allowed", "bucket", "groups", "pages", "prefix")

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.groups: dict[Group, None] = {}
        """Its pending groups (in the order they came: a set would be in address order)."""
        self.pages = 1
        """Pages the parent's last listing took (or at least needed, when it was abandoned)."""
        self.allowed = True
        """False once listing the parent failed for good (its groups are listed one by one)."""

    def __repr__(self) -> str:
        return f"<Family s3://{self.bucket}/{self.prefix} groups={len(self.groups)}>"

    def serves(self, group: Group) -> bool:
        """Whether listing the parent costs no more pages than listing ``group`` itself, while
        other groups wait under it too."""
        return self.allowed and len(self.groups) > 1 and self.pages <= group.pages


class SiblingListing:
    """Lists a parent prefix for the due lanes of several of its groups at once."""

    async def check(
        self,
        host: CheckHost,
        family: Family,
        lead: Group,
        due: dict[Group, list[Lane]],
        started: float,
    ) -> bool:
        """List the parent; every listed key that a wait of these groups awaits is found.

        Returns False when the listing was given up (the parent outgrew ``lead``'s own listing,
        or listing it is not allowed): nothing was counted as a check, the groups' lanes are
        still due. Transient errors back every group off, as a group's own listing would.
        """
        by_prefix = {group.prefix: group for group in due}
        found: dict[Group, int] = dict.fromkeys(due, 0)
        listed: dict[Group, int] = dict.fromkeys(due, 0)
        token: str | None = None
        pages = 0
        while True:
            await host.budget.take()
            try:
                page = await host.transport.list_page(family.bucket, family.prefix, token)
            except (BotoCoreError, ClientError, OSError) as error:
                if host.transport.note_error(error).retryable:
                    for group, lanes in due.items():
                        host.transient(group, lanes, error)
                    return True
                logger.info(
                    "cannot list s3://%s/%s (%r); listing its sub-prefixes one by one",
                    family.bucket,
                    family.prefix,
                    error,
                )
                family.allowed = False
                return False
            pages += 1
            host.stats.list_pages += 1
            for key, size in page.sizes.items():
                owner = by_prefix.get(key[: key.rfind("/") + 1])
                if owner is None:
                    continue
                listed[owner] += 1
                for entry in owner.waiting_for(key):
                    found[owner] += 1
                    host.stats.found_by_list += 1
                    host.found(entry, Found(kind_of(entry, family.bucket, key), size=size))
            if page.next_token is None:
                break
            if pages >= lead.pages:  # dearer than listing the lead group alone: stop here
                family.pages = pages + 1
                return False
            token = page.next_token
        host.stats.lists += 1
        host.stats.sibling_lists += 1
        if not any(found.values()):
            host.stats.empty_lists += 1
        family.pages = pages
        for group, lanes in due.items():
            group.keys_listed = listed[group]
            group.arriving = found[group] > 0
            group.backoff = 0.0
            host.satisfy(lanes, started)
        return True
