"""S3 plumbing: ``s3://`` URIs, the ``S3Requests`` protocol, body readers, input key naming.

The requests themselves (GET / PUT / LIST / DELETE with retries) are :mod:`._s3_transport`.

Polling and retrying are kept apart: a missing key is *not ready* (the caller polls again
later), throttling / 5xx / broken connections are *transient* (retried a few times here by
``get`` and ``put``, or by the waiting engine with its own backoff), and everything else is
*fatal* (raised as :class:`UnexpectedClientError`). :mod:`._aws_errors` does the sorting.
"""

from __future__ import annotations

import inspect
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, Protocol, TypeVar

import anyio
from botocore.exceptions import (
    BotoCoreError,
    ResponseStreamingError,
)

from ._aws_errors import ErrorKind

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "READ_STALL_TIMEOUT",
    "Fetched",
    "ListedPage",
    "ObjectTooLarge",
    "ReadBody",
    "S3Requests",
    "S3Uri",
    "check_bucket",
    "close_body",
    "detection_slots",
    "input_key",
    "read_all",
    "read_prefix",
]

logger = logging.getLogger("aiosagemaker")

DEFAULT_CONTENT_TYPE = "application/octet-stream"

READ_STALL_TIMEOUT = 30.0
"""Seconds an S3 GET may go without progress (its answer, or the next bytes of its body)
before it is abandoned as a transient error (and retried, or reported). It bounds the reads
no wait's ``timeout`` bounds: single checks, waits by attempts only, downloads without a
WaiterConfig."""
READ_CHUNK = 1024 * 1024
"""Bytes asked for per read of a body read whole (each read is bounded and counted)."""

T = TypeVar("T")
Consume = Callable[[Any], Awaitable[T]]
"""Reads an open aiobotocore streaming body and returns what the caller keeps."""

_BUCKET = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,253}[a-zA-Z0-9])?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_bucket(bucket: object, what: str = "bucket") -> str:
    """``bucket`` if it is a valid S3 bucket name; ``TypeError`` / ``ValueError`` otherwise."""
    if not isinstance(bucket, str):
        raise TypeError(f"{what} must be a bucket name (a string), got {type(bucket).__name__}")
    if not _BUCKET.match(bucket):
        raise ValueError(
            f"{what} {bucket!r} is not a valid S3 bucket name: letters, digits, '.', '-' or '_' "
            "(no spaces), starting and ending with a letter or digit"
        )
    return bucket


@dataclass(frozen=True, slots=True)
class S3Uri:
    """A parsed ``s3://bucket/key`` location."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str, *, what: str = "S3 location") -> S3Uri:
        """Parse ``s3://bucket/key``; raise ``ValueError`` saying what is wrong otherwise."""
        if not isinstance(uri, str):
            raise TypeError(f"{what} must be an 's3://bucket/key' string, got {type(uri).__name__}")
        if not uri.startswith("s3://"):
            raise ValueError(f"{what} must be an S3 URI of the form 's3://bucket/key', got {uri!r}")
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket or not key:
            raise ValueError(
                f"{what} must name both a bucket and a key ('s3://bucket/key'), got {uri!r}"
            )
        check_bucket(bucket, f"the bucket of {what} {uri!r}:")
        if _CONTROL.search(key) or len(key.encode("utf-8")) > 1024:
            raise ValueError(
                f"{what} {uri!r} has a key with control characters (newline, tab, ...) or "
                "longer than 1,024 bytes; remove them (strip() the string)"
            )
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


async def close_body(body: Any) -> None:
    """Close an aiobotocore streaming body on either HTTP backend (aiohttp or httpx)."""
    aclose = getattr(body, "aclose", None)
    result = aclose() if aclose is not None else body.close()
    if inspect.isawaitable(result):
        await result


async def read_all(body: Any) -> bytes:
    """``Consume`` that reads the whole body into memory."""
    data: bytes = await body.read()
    return data


class ReadBody:
    """An aiobotocore streaming body read under a size limit and a stall bound.

    Counts the bytes read and raises :class:`ObjectTooLarge` as soon as they pass
    ``max_bytes``, whether or not S3 announced a Content-Length (a chunked body included).
    A read that makes no progress for ``stall`` seconds raises ``TimeoutError``; a broken
    stream (an aiohttp or httpx error) raises botocore's ``ResponseStreamingError``: both are
    transient to :func:`~._aws_errors.classify`, so the GET is retried or reported, never
    leaked as the HTTP library's own exception.
    """

    def __init__(
        self,
        body: Any,
        *,
        max_bytes: int | None,
        stall: float,
        scope: anyio.CancelScope | None = None,
    ) -> None:
        self._body = body
        self._max_bytes = max_bytes
        self._stall = stall
        self._scope = scope
        """A cancel scope around the whole read, whose deadline each read pushes ``stall``
        seconds on (cheaper than a timeout per read); its owner reports the stall."""
        self.size = 0
        """Bytes read so far."""

    async def read(self, amt: int | None = None) -> bytes:
        """Up to ``amt`` bytes (b"" at the end); everything that is left when ``amt`` is None."""
        if amt is not None and amt >= 0:
            return await self._read_chunk(amt)
        chunks: list[bytes] = []
        while chunk := await self._read_chunk(READ_CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)

    async def _read_chunk(self, amt: int) -> bytes:
        try:
            if self._scope is not None:
                chunk: bytes = await self._body.read(amt)
                self._scope.deadline = anyio.current_time() + self._stall
            else:
                with anyio.fail_after(self._stall):
                    chunk = await self._body.read(amt)
        except TimeoutError:
            raise TimeoutError(
                f"the body stopped for {self._stall} s after {self.size:,} bytes"
            ) from None
        except BotoCoreError:
            raise
        except Exception as error:  # the HTTP library's own stream errors
            raise ResponseStreamingError(error=error) from error
        self.size += len(chunk)
        if self._max_bytes is not None and self.size > self._max_bytes:
            raise ObjectTooLarge(self.size, exact=False)
        return chunk


def read_prefix(limit: int) -> Consume[tuple[bytes, bool]]:
    """``Consume`` that reads at most ``limit`` bytes: (the bytes, whether the body was cut)."""

    async def consume(body: Any) -> tuple[bytes, bool]:
        # read(n) may return fewer bytes than asked for before the end (aiohttp streams)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk: bytes = await body.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
        return data[:limit], size > limit

    return consume


@dataclass(frozen=True, slots=True)
class Fetched(Generic[T]):
    """An object that was found: what ``consume`` returned, and its metadata."""

    value: T
    content_type: str
    content_length: int | None


class ObjectTooLarge(Exception):
    """Internal: the object is larger than the ``max_bytes`` a GET was allowed to read.

    ``size`` is its Content-Length (``exact``), or the bytes read before reading stopped
    (the body had no Content-Length).
    """

    def __init__(self, size: int, *, exact: bool = True) -> None:
        super().__init__(size)
        self.size = size
        self.exact = exact


@dataclass(frozen=True, slots=True)
class ListedPage:
    """One ``ListObjectsV2`` page: key -> size, and the token of the next page (or None)."""

    sizes: dict[str, int]
    next_token: str | None


def detection_slots(limit: int) -> int:
    """Connections kept for detection requests beside ``limit`` for uploads and result reads."""
    return max(4, limit // 4)


class S3Requests(Protocol):
    """What a predictor and its waiting engine ask of S3 (the real one: ``S3Transport``).

    Another implementation (an in-memory one in tests, say) can be passed to
    ``AsyncPredictor(transport=...)``. Missing keys are None (``get_once`` / ``get``), errors
    are botocore's (``get_once`` / ``list_page``) or :class:`UnexpectedClientError` (the
    retrying ``get`` / ``put`` / ``delete``), as :class:`~._s3_transport.S3Transport` documents.
    """

    client: Any
    """The S3 client (finding or creating the default bucket); None if there is none."""
    limiter: anyio.CapacityLimiter
    """Its ``total_tokens`` bound how many probing GETs the engine runs at once."""

    def note_error(self, error: BaseException) -> ErrorKind: ...

    async def get_once(
        self,
        uri: S3Uri,
        consume: Consume[T],
        *,
        max_bytes: int | None = None,
        detecting: bool = True,
    ) -> Fetched[T] | None: ...

    async def get(
        self,
        uri: S3Uri,
        consume: Consume[T],
        *,
        max_bytes: int | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        found: bool = False,
        **context: Any,
    ) -> Fetched[T] | None: ...

    async def list_page(self, bucket: str, prefix: str, token: str | None = None) -> ListedPage: ...

    async def put(self, uri: S3Uri, body: Any, content_type: str, **context: Any) -> None: ...

    async def delete(self, uri: S3Uri, **context: Any) -> None: ...


def input_key(prefix: str, endpoint_name: str, now: datetime | None = None) -> str:
    """The SDK's input key layout: ``{prefix}/{endpoint}-{yymmdd-HHMM}/{timestamp}-{uuid4}``.

    Timestamps are UTC. Does not depend on any optional name (the SDK crashes without one).
    """
    now = now or datetime.now(timezone.utc)
    folder = f"{endpoint_name[:50]}-{now:%y%m%d-%H%M}"
    leaf = f"{now:%Y-%m-%d-%H-%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}"
    return "/".join(part for part in (prefix.strip("/"), folder, leaf) if part)
