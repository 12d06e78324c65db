"""S3Transport: GET, PUT, LIST and DELETE with classification, limiters and bounded retries.

Polling and retrying are kept apart: a missing key is *not ready* (the caller polls again
later), throttling / 5xx / broken connections are *transient* (retried a few times here by
``get`` and ``put``, or by the waiting engine with its own backoff), and everything else is
*fatal* (raised as :class:`UnexpectedClientError`). :mod:`._aws_errors` does the sorting.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from ._aws_errors import ErrorKind, classify, describe_s3_fatal, error_code
from ._clients import LISTED_SIZES
from ._config import S3Options
from ._exceptions import UnexpectedClientError
from ._s3 import (
    DEFAULT_CONTENT_TYPE,
    READ_STALL_TIMEOUT,
    Consume,
    Fetched,
    ListedPage,
    ObjectTooLarge,
    ReadBody,
    S3Uri,
    T,
    close_body,
    detection_slots,
)

__all__ = ["S3Transport", "pin_bucket_owner"]

logger = logging.getLogger("aiosagemaker")


class S3Transport:
    """GET, PUT and LIST with classification, a concurrency limiter and bounded retries.

    ``get_once`` and ``list_page`` make one request and raise the botocore error as it is (the
    waiting engine retries with its own backoff and budget); ``get`` and ``put`` retry
    transient errors ``max_retries`` times and raise :class:`UnexpectedClientError`.

    Args:
        client: An open aiobotocore S3 client.
        limiter: Bounds concurrent S3 requests below the connection pool size (uploads and
            result reads); detection requests have their own, smaller limiter
            (:func:`detection_slots`), and the client's pool has room for both, so a burst of
            uploads never starves the search for results; a result that has been found is
            read with a free token of either (``get(..., found=True)``).
        max_retries: Transient errors tolerated per ``get`` / ``put`` before giving up.
        retry_delay: First backoff delay in seconds (doubles, capped at 2 s).
        on_throttle: Called whenever S3 answers SlowDown / 503 (the request budget listens).
        on_request: Called with the operation name of every request (telemetry counts them).
        options: Upload arguments and the expected bucket owner, applied to every request
            of ``client`` (the owner by a botocore event hook, multipart parts included).
        stall_timeout: Seconds a GET may go without progress (:data:`READ_STALL_TIMEOUT`).
    """

    def __init__(
        self,
        client: Any,
        limiter: anyio.CapacityLimiter,
        *,
        max_retries: int = 3,
        retry_delay: float = 0.1,
        on_throttle: Callable[[], None] | None = None,
        on_request: Callable[[str], None] | None = None,
        options: S3Options | None = None,
        stall_timeout: float | None = None,
    ) -> None:
        self.client = client
        self.stall_timeout = READ_STALL_TIMEOUT if stall_timeout is None else stall_timeout
        self.on_request = on_request
        self.limiter = limiter
        self.detection_limiter = anyio.CapacityLimiter(detection_slots(int(limiter.total_tokens)))
        """LIST pages and probing GETs: their own slots, never queued behind uploads/fetches."""
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.on_throttle = on_throttle
        self.options = options or S3Options()
        if self.options.expected_bucket_owner is not None:
            pin_bucket_owner(client, self.options.expected_bucket_owner)

    def note_error(self, error: BaseException) -> ErrorKind:
        """Classify ``error`` and tell the budget when it is throttling."""
        kind = classify(error)
        if kind is ErrorKind.THROTTLED and self.on_throttle is not None:
            self.on_throttle()
        return kind

    async def get_once(
        self,
        uri: S3Uri,
        consume: Consume[T],
        *,
        max_bytes: int | None = None,
        detecting: bool = True,
        found: bool = False,
    ) -> Fetched[T] | None:
        """One GET of ``uri``; None when the key does not exist; botocore errors as raised.

        ``detecting``: a probe of the waiting engine (its limiter); False for a result read.
        ``found``: a result read that detection triggered (:meth:`_acquire_found`).

        ``consume`` gets a :class:`ReadBody`: ``max_bytes`` is enforced while reading too,
        and a GET or a read without progress for :attr:`stall_timeout` raises
        ``TimeoutError``.

        Raises:
            ObjectTooLarge: the object is larger than ``max_bytes`` (announced by its
                Content-Length: the body is not read; else as soon as reading passes it).
        """
        if found:
            limiter = await self._acquire_found()
        else:
            limiter = self.detection_limiter if detecting else self.limiter
            await self._acquire(limiter)
        self._count("GetObject")
        try:
            try:
                with anyio.fail_after(self.stall_timeout):
                    response = await self.client.get_object(Bucket=uri.bucket, Key=uri.key)
            except TimeoutError:
                raise TimeoutError(f"no answer from S3 in {self.stall_timeout} s") from None
            except ClientError as error:
                if classify(error) is ErrorKind.NOT_FOUND:
                    return None
                raise
            body = response["Body"]
            try:
                size = response.get("ContentLength")
                if max_bytes is not None and size is not None and size > max_bytes:
                    raise ObjectTooLarge(int(size))
                stall = self.stall_timeout
                with anyio.CancelScope(deadline=anyio.current_time() + stall) as reading:
                    reader = ReadBody(body, max_bytes=max_bytes, stall=stall, scope=reading)
                    value = await consume(reader)
                if reading.cancelled_caught:
                    stopped = f"the body stopped for {stall} s after {reader.size:,} bytes"
                    raise TimeoutError(stopped)
            finally:
                await close_body(body)
        finally:
            limiter.release()
        return Fetched(
            value=value,
            content_type=response.get("ContentType") or DEFAULT_CONTENT_TYPE,
            content_length=response.get("ContentLength"),
        )

    async def get(
        self,
        uri: S3Uri,
        consume: Consume[T],
        *,
        max_bytes: int | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        found: bool = False,
        **context: Any,
    ) -> Fetched[T] | None:
        """GET ``uri`` and run ``consume`` on its body; None when the key does not exist yet.

        Transient errors are retried; the rest raise :class:`UnexpectedClientError`.
        ``on_error`` is told of every S3 error, the retried ones included. ``found``: the
        read of a result a notification announced (not queued behind uploads).
        """
        return await self._with_retries(
            lambda: self.get_once(uri, consume, max_bytes=max_bytes, detecting=False, found=found),
            uri,
            "read",
            context,
            on_error=on_error,
        )

    async def list_page(self, bucket: str, prefix: str, token: str | None = None) -> ListedPage:
        """One ``ListObjectsV2`` page under ``prefix`` (up to 1,000 keys); errors as raised."""
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1000}
        if token is not None:
            params["ContinuationToken"] = token
        await self._acquire(self.detection_limiter)
        self._count("ListObjectsV2")
        try:
            response = await self.client.list_objects_v2(**params)
        finally:
            self.detection_limiter.release()
        sizes = response.get(LISTED_SIZES)  # read by the client's lean_listings handler
        if sizes is None:
            sizes = {item["Key"]: int(item.get("Size", 0)) for item in response.get("Contents", ())}
        next_token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
        return ListedPage(sizes, next_token)

    async def put(self, uri: S3Uri, body: Any, content_type: str, **context: Any) -> None:
        """PUT ``body`` (bytes or a readable file object) at ``uri`` with ``content_type``.

        With an aioboto3 client, file objects go through its ``upload_fileobj`` transfer
        helper (multipart above its threshold); otherwise one PutObject.
        """

        upload_fileobj = getattr(self.client, "upload_fileobj", None)
        extra = {**self.options.upload_extra_args, "ContentType": content_type}

        async def attempt() -> None:
            if hasattr(body, "seek"):
                body.seek(0)
            await self._acquire(self.limiter)
            self._count("PutObject")
            try:
                if upload_fileobj is not None and hasattr(body, "read"):
                    # aioboto3's transfer helper: multipart upload for large file objects
                    await upload_fileobj(body, uri.bucket, uri.key, ExtraArgs=dict(extra))
                else:
                    await self.client.put_object(Bucket=uri.bucket, Key=uri.key, Body=body, **extra)
            finally:
                self.limiter.release()

        await self._with_retries(attempt, uri, "write", context, missing_is_fatal=True)

    def _count(self, operation: str) -> None:
        if self.on_request is not None:
            self.on_request(operation)

    async def _acquire(self, limiter: anyio.CapacityLimiter) -> None:
        """Take a limiter token; without the two scheduler round trips of ``async with``.

        When a token is free this does not yield to the event loop at all (the S3 request
        that follows does); otherwise it waits in the limiter's FIFO queue as usual.
        """
        try:
            limiter.acquire_nowait()
        except anyio.WouldBlock:
            await limiter.acquire()

    async def _acquire_found(self) -> anyio.CapacityLimiter:
        """A token for reading a found result: a free shared one, else a detection slot.

        Uploads queue first-come-first-served in the shared limiter; a result that has been
        found waits only for the detection slots (LIST pages, probes, other found results),
        so it is never queued behind every upload not yet sent. Both limiters fit in the
        connection pool together (:func:`detection_slots`).
        """
        for limiter in (self.limiter, self.detection_limiter):
            try:
                limiter.acquire_nowait()
            except anyio.WouldBlock:
                continue
            return limiter
        await self.detection_limiter.acquire()
        return self.detection_limiter

    async def _with_retries(
        self,
        attempt: Callable[[], Awaitable[T]],
        uri: S3Uri,
        action: str,
        context: dict[str, Any],
        *,
        missing_is_fatal: bool = False,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> T:
        delay = self.retry_delay
        retry = 0
        while True:
            try:
                return await attempt()
            except ParamValidationError as error:
                raise ValueError(f"invalid S3 request arguments for {uri}: {error}") from error
            except (BotoCoreError, ClientError, OSError) as error:
                if on_error is not None:
                    on_error(error)
                kind = self.note_error(error)
                if kind.retryable and retry < self.max_retries:
                    logger.debug("transient error on %s %s, retrying: %r", action, uri, error)
                    retry += 1
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                if kind.retryable:
                    message = (
                        f"{action} {uri} kept failing after {self.max_retries + 1} attempts "
                        f"with transient errors; last: {error}"
                    )
                elif kind is ErrorKind.NOT_FOUND and missing_is_fatal:
                    message = f"{action} {uri} failed: {error}"
                else:
                    bucket = getattr(uri, "bucket", "")
                    message = describe_s3_fatal(error, uri, action, bucket)
                raise UnexpectedClientError(message, code=error_code(error), **context) from error

    async def delete(self, uri: S3Uri, **context: Any) -> None:
        """DELETE the object at ``uri`` (none there is no error), retrying transient errors."""

        async def attempt() -> None:
            await self._acquire(self.limiter)
            self._count("DeleteObject")
            try:
                await self.client.delete_object(Bucket=uri.bucket, Key=uri.key)
            finally:
                self.limiter.release()

        await self._with_retries(attempt, uri, "delete", context)


def pin_bucket_owner(client: Any, account: str) -> None:
    """Send ``ExpectedBucketOwner=account`` on every request of ``client`` that takes it."""

    def add_owner(params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ExpectedBucketOwner" in model.input_shape.members:
            params.setdefault("ExpectedBucketOwner", account)

    client.meta.events.register("before-parameter-build.s3", add_owner)
