"""Sorting, filtering and NextToken/MaxResults pagination of the control plane's List calls."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from typing import Any

Json = dict[str, Any]

DEFAULT_MAX_RESULTS = 10
MAX_RESULTS_LIMIT = 100


class PagingError(ValueError):
    """A bad ``NextToken``, ``MaxResults``, ``SortBy`` or ``SortOrder``."""


def _token(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"offset": offset, "query": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _offset(token: str, fingerprint: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        offset = data["offset"]
        query = data["query"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError):
        raise PagingError("Invalid pagination token.") from None
    if not isinstance(offset, int) or offset < 0 or query != fingerprint:
        raise PagingError("Invalid pagination token: it belongs to another query.")
    return offset


def page(
    items: Iterable[Json],
    body: Json,
    *,
    result_key: str,
    sort_keys: dict[str, Callable[[Json], Any]],
    default_sort: str,
) -> Json:
    """One page of ``items`` as a List response: ``{result_key: [...], "NextToken"?: ...}``.

    ``body`` supplies ``SortBy`` (one of ``sort_keys``), ``SortOrder`` (``Ascending`` or
    ``Descending``, default ``Descending``), ``MaxResults`` (1-100, default 10) and
    ``NextToken`` (from the previous page of the same query).

    Raises:
        PagingError: One of those values is invalid.
    """
    sort_by = body.get("SortBy", default_sort)
    order = body.get("SortOrder", "Descending")
    if sort_by not in sort_keys:
        raise PagingError(f"SortBy must be one of {', '.join(sort_keys)}, got {sort_by!r}.")
    if order not in ("Ascending", "Descending"):
        raise PagingError(f"SortOrder must be Ascending or Descending, got {order!r}.")
    limit = body.get("MaxResults", DEFAULT_MAX_RESULTS)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS_LIMIT:
        raise PagingError(
            f"1 validation error detected: Value '{limit}' at 'maxResults' failed to satisfy "
            f"constraint: Member must have value between 1 and {MAX_RESULTS_LIMIT}"
        )
    query = {k: v for k, v in body.items() if k not in ("NextToken", "MaxResults")}
    fingerprint = json.dumps(query, sort_keys=True, default=str)
    key = sort_keys[sort_by]
    ordered = sorted(items, key=lambda item: (key(item), item.get("_name", "")))
    if order == "Descending":
        ordered.reverse()
    start = _offset(body["NextToken"], fingerprint) if body.get("NextToken") else 0
    chunk = ordered[start : start + limit]
    result: Json = {result_key: [{k: v for k, v in i.items() if k != "_name"} for i in chunk]}
    if start + limit < len(ordered):
        result["NextToken"] = _token(start + limit, fingerprint)
    return result


def time_filters(item_time: float, body: Json, prefix: str) -> bool:
    """Whether ``item_time`` passes ``<prefix>Before`` / ``<prefix>After`` in ``body``."""
    before, after = body.get(f"{prefix}Before"), body.get(f"{prefix}After")
    if before is not None and not item_time < float(before):
        return False
    return after is None or item_time > float(after)
