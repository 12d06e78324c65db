"""Checks of ``AsyncPredictor`` arguments and request headers (typed errors that say how to fix).

``waiter_config`` is checked by :func:`._config.check_waiter_config`, next to WaiterConfig.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._config import check_positive
from ._exceptions import InvalidRequestError
from ._notifications import NotificationQueue
from ._types import Deserializer, Serializer

__all__ = [
    "accept_header",
    "check_headers",
    "check_inference_id",
    "check_options",
    "check_prefix",
    "check_retries",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_HEADER_ARGS = ("ContentType", "Accept", "CustomAttributes")
_HEADER_MAX = 1024


def check_options(
    endpoint_name: object,
    serializer: object,
    deserializer: object,
    *,
    inline: object,
    max_concurrency: object,
    failure_check_every: object,
    max_result_bytes: object,
    s3_requests_per_second: object,
    detection: object,
    notifications: object,
) -> None:
    """The ``AsyncPredictor`` arguments that need no more than a look."""
    if not isinstance(endpoint_name, str) or not endpoint_name:
        raise ValueError(f"endpoint_name must be a non-empty string, got {endpoint_name!r}")
    if not isinstance(serializer, Serializer):
        raise TypeError(
            "serializer must have CONTENT_TYPE and serialize(data), got "
            f"{type(serializer).__name__}"
        )
    if not isinstance(deserializer, Deserializer):
        raise TypeError(
            "deserializer must have ACCEPT and deserialize(stream, content_type), got "
            f"{type(deserializer).__name__}"
        )
    if inline not in (True, False, "auto"):
        raise ValueError(f"inline must be True, False or 'auto', got {inline!r}")
    if max_concurrency is not None:
        check_positive("max_concurrency", max_concurrency, integer=True)
    check_positive("failure_check_every", failure_check_every, integer=True)
    if max_result_bytes is not None:
        check_positive("max_result_bytes", max_result_bytes, integer=True)
    check_positive("s3_requests_per_second", s3_requests_per_second)
    if detection not in ("auto", "list", "get"):
        raise ValueError(f"detection must be 'auto', 'list' or 'get', got {detection!r}")
    if notifications is not None and not isinstance(notifications, NotificationQueue):
        raise TypeError(
            "notifications must be an aiosagemaker.NotificationQueue or None, got "
            f"{type(notifications).__name__}"
        )


def check_retries(value: object) -> int:
    """``transient_retries``: an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"transient_retries must be an int (retries per request, 0 for none), got "
            f"{type(value).__name__}: {value!r}"
        )
    if value < 0:
        raise ValueError(f"transient_retries must be >= 0 (0 for no retries), got {value}")
    return value


def check_prefix(value: object) -> str:
    """``input_prefix``: a string without control characters."""
    if not isinstance(value, str):
        raise TypeError(
            f"input_prefix must be a string (the key prefix of uploaded inputs; '' for none), "
            f"got {type(value).__name__}"
        )
    if _CONTROL.search(value):
        raise ValueError(f"input_prefix must not contain control characters, got {value!r}")
    return value


def check_inference_id(value: object) -> str:
    """The service's rule: 1-64 printable ASCII characters, the first not a space."""
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"inference_id must be a str, got {type(value).__name__}; the request was not sent"
        )
    if not 1 <= len(value) <= 64 or not _PRINTABLE.fullmatch(value) or value[0] == " ":
        raise InvalidRequestError(
            f"inference_id must be 1-64 printable ASCII characters (no newline or other control "
            f"character, not starting with a space), got {value!r}; the request was not sent"
        )
    return value


def check_headers(args: Mapping[str, Any]) -> None:
    """String arguments sent as HTTP headers: printable ASCII, at most 1024 characters."""
    for name in _HEADER_ARGS:
        value = args.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRequestError(
                f"{name} must be a str (it is sent as an HTTP header), got "
                f"{type(value).__name__}; the request was not sent"
            )
        if len(value) > _HEADER_MAX or not _PRINTABLE.fullmatch(value):
            raise InvalidRequestError(
                f"{name} must be at most {_HEADER_MAX} printable ASCII characters (it is sent as "
                f"an HTTP header: no newline or other control character), got {value[:80]!r}"
                f"{'...' if len(value) > 80 else ''}; the request was not sent"
            )


def accept_header(accept: str | tuple[str, ...] | list[str]) -> str:
    """A str ACCEPT is sent as it is; a sequence is joined (the SDK joins a str's characters)."""
    return accept if isinstance(accept, str) else ", ".join(accept)
