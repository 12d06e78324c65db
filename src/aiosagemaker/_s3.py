"""S3 plumbing: ``s3://`` URIs, error classification, GET/PUT with bounded transient retries.

Polling and retrying are kept apart: a missing key is *not ready* (the caller polls again
later), throttling / 5xx / broken connections are *transient* (retried here, a few times, with
backoff), and everything else is *fatal* (raised at once as :class:`UnexpectedClientError`).
"""

from __future__ import annotations

import enum
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

import anyio
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
)

from ._exceptions import UnexpectedClientError

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "ErrorKind",
    "Fetched",
    "S3Transport",
    "S3Uri",
    "classify",
    "close_body",
    "input_key",
]

logger = logging.getLogger("aiosagemaker")

DEFAULT_CONTENT_TYPE = "application/octet-stream"

T = TypeVar("T")
Consume = Callable[[Any], Awaitable[T]]
"""Reads an open aiobotocore streaming body and returns what the caller keeps."""


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
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class ErrorKind(enum.Enum):
    """What an S3 error means to a poller."""

    NOT_FOUND = "not found"
    TRANSIENT = "transient"
    FATAL = "fatal"


_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
    }
)


def classify(error: BaseException) -> ErrorKind:
    """Sort an exception raised by an S3 call into not-found, transient or fatal."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _NOT_FOUND_CODES:
            return ErrorKind.NOT_FOUND
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return ErrorKind.TRANSIENT
        return ErrorKind.FATAL
    if isinstance(error, (HTTPClientError, ResponseStreamingError, IncompleteReadError)):
        return ErrorKind.TRANSIENT
    if isinstance(error, (ConnectionError, TimeoutError)):
        return ErrorKind.TRANSIENT
    return ErrorKind.FATAL


def _error_code(error: BaseException) -> str | None:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "")) or None
    return None


def describe_fatal(error: BaseException, uri: S3Uri, action: str) -> str:
    """A message for a fatal S3 error that says what to check or change."""
    code = _error_code(error)
    if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
        needed = "s3:GetObject" if action == "read" else "s3:PutObject"
        hint = (
            f"Access denied to {action} {uri}. Grant the caller {needed} on that key"
            + (
                f" and s3:ListBucket on bucket {uri.bucket!r}: without s3:ListBucket S3 "
                "answers 403 instead of 404 for a key that does not exist yet, so a result "
                "that is still being computed looks like access denied"
                if action == "read"
                else ""
            )
            + "."
        )
        return hint
    if code == "NoSuchBucket":
        return (
            f"Bucket {uri.bucket!r} does not exist ({action} {uri}). Check the bucket name, "
            "the region and the S3 endpoint (AWS_ENDPOINT_URL_S3), or create the bucket."
        )
    return f"{action} {uri} failed: {error}"


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


@dataclass(frozen=True, slots=True)
class Fetched(Generic[T]):
    """An object that was found: what ``consume`` returned, and its metadata."""

    value: T
    content_type: str
    content_length: int | None


class S3Transport:
    """GET and PUT with classification, a concurrency limiter and bounded transient retries.

    Args:
        client: An open aiobotocore S3 client.
        limiter: Bounds concurrent S3 requests below the connection pool size.
        max_retries: Transient errors tolerated per operation before giving up.
        retry_delay: First backoff delay in seconds (doubles, capped at 2 s).
    """

    def __init__(
        self,
        client: Any,
        limiter: anyio.CapacityLimiter,
        *,
        max_retries: int = 3,
        retry_delay: float = 0.1,
    ) -> None:
        self.client = client
        self.limiter = limiter
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self._reserve_lock = anyio.Lock()

    @asynccontextmanager
    async def reserve(self, count: int) -> AsyncIterator[None]:
        """Hold ``count`` request slots at once, for requests made with ``limited=False``.

        Slots are taken together under a lock, so callers that need several cannot deadlock
        each holding one; while waiting, no task exists yet for the requests to come.
        """
        borrowers: list[object] = []
        try:
            async with self._reserve_lock:
                for _ in range(count):
                    borrower = object()
                    await self.limiter.acquire_on_behalf_of(borrower)
                    borrowers.append(borrower)
            yield
        finally:
            for borrower in borrowers:
                self.limiter.release_on_behalf_of(borrower)

    async def get(
        self, uri: S3Uri, consume: Consume[T], *, limited: bool = True, **context: Any
    ) -> Fetched[T] | None:
        """GET ``uri`` and run ``consume`` on its body; None when the key does not exist yet.

        ``limited=False``: the caller already holds a slot (see :meth:`reserve`).
        """

        async def attempt() -> Fetched[T]:
            if limited:
                await self._acquire()
            try:
                response = await self.client.get_object(Bucket=uri.bucket, Key=uri.key)
                body = response["Body"]
                try:
                    value = await consume(body)
                finally:
                    await close_body(body)
            finally:
                if limited:
                    self.limiter.release()
            return Fetched(
                value=value,
                content_type=response.get("ContentType") or DEFAULT_CONTENT_TYPE,
                content_length=response.get("ContentLength"),
            )

        return await self._with_retries(attempt, uri, "read", context)

    async def put(self, uri: S3Uri, body: Any, content_type: str, **context: Any) -> None:
        """PUT ``body`` (bytes or a readable file object) at ``uri`` with ``content_type``.

        With an aioboto3 client, file objects go through its ``upload_fileobj`` transfer
        helper (multipart above its threshold); otherwise one PutObject.
        """

        upload_fileobj = getattr(self.client, "upload_fileobj", None)

        async def attempt() -> None:
            if hasattr(body, "seek"):
                body.seek(0)
            await self._acquire()
            try:
                if upload_fileobj is not None and hasattr(body, "read"):
                    # aioboto3's transfer helper: multipart upload for large file objects
                    await upload_fileobj(
                        body, uri.bucket, uri.key, ExtraArgs={"ContentType": content_type}
                    )
                else:
                    await self.client.put_object(
                        Bucket=uri.bucket, Key=uri.key, Body=body, ContentType=content_type
                    )
            finally:
                self.limiter.release()

        await self._with_retries(attempt, uri, "write", context, missing_is_fatal=True)

    async def _acquire(self) -> None:
        """Take a limiter token; without the two scheduler round trips of ``async with``.

        When a token is free this does not yield to the event loop at all (the S3 request
        that follows does); otherwise it waits in the limiter's FIFO queue as usual.
        """
        try:
            self.limiter.acquire_nowait()
        except anyio.WouldBlock:
            await self.limiter.acquire()

    async def _with_retries(
        self,
        attempt: Callable[[], Awaitable[T]],
        uri: S3Uri,
        action: str,
        context: dict[str, Any],
        *,
        missing_is_fatal: bool = False,
    ) -> T | None:
        delay = self.retry_delay
        for retry in range(self.max_retries + 1):
            try:
                return await attempt()
            except (BotoCoreError, ClientError, OSError) as error:
                kind = classify(error)
                if kind is ErrorKind.NOT_FOUND and not missing_is_fatal:
                    return None
                if kind is ErrorKind.TRANSIENT and retry < self.max_retries:
                    logger.debug("transient error on %s %s, retrying: %r", action, uri, error)
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                if kind is ErrorKind.TRANSIENT:
                    message = (
                        f"{action} {uri} kept failing after {self.max_retries + 1} attempts "
                        f"with transient errors; last: {error}"
                    )
                else:
                    message = describe_fatal(error, uri, action)
                raise UnexpectedClientError(message, code=_error_code(error), **context) from error
        raise AssertionError("unreachable")  # pragma: no cover


def input_key(prefix: str, endpoint_name: str, now: datetime | None = None) -> str:
    """The SDK's input key layout: ``{prefix}/{endpoint}-{yymmdd-HHMM}/{timestamp}-{uuid4}``.

    Timestamps are UTC. Does not depend on any optional name (the SDK crashes without one).
    """
    now = now or datetime.now(timezone.utc)
    folder = f"{endpoint_name[:50]}-{now:%y%m%d-%H%M}"
    leaf = f"{now:%Y-%m-%d-%H-%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}"
    return "/".join(part for part in (prefix.strip("/"), folder, leaf) if part)
