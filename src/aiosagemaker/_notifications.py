"""Notification-driven completion: an SQS queue subscribed to the endpoint's SNS topics.

:class:`NotificationQueue` is what a user hands to ``AsyncPredictor(notifications=...)``.
:class:`NotificationWaiting` is the wait strategy the predictor builds from it: one
:class:`~aiosagemaker._sqs_listener.SqsListener` per predictor resolves every pending
response, and a slow S3 poll (the safety net) finishes a result whose notification was lost.
The listener is an ``asyncio.Task`` (not an anyio task group: the predictor opens lazily in
whichever task first uses it, and a cancel scope must exit in the task that entered it); the
predictor cancels and awaits it on close.
"""

from __future__ import annotations

import logging
import random
import time
import weakref
from collections.abc import Callable
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import anyio

from ._config import WaiterConfig, check_positive
from ._exceptions import ObjectNotExistedError, PollingTimeoutError
from ._s3 import DEFAULT_CONTENT_TYPE, Consume, Fetched, S3Transport, read_all
from ._sns_messages import Notification
from ._sqs_listener import NotificationStats, SqsListener
from ._waiting import (
    STILL_RUNNING,
    Completed,
    Failed,
    Outcome,
    ResultLocations,
    S3Polling,
    failure_text,
)

__all__ = ["NotificationQueue", "NotificationStats", "NotificationWaiting", "wait_budget"]

logger = logging.getLogger("aiosagemaker")

T = TypeVar("T")

_NO_REASON = "(the failure notification carries no failureReason and there is no failure file)"


class NotificationQueue:
    """An SQS queue subscribed to an endpoint's SuccessTopic and ErrorTopic.

    Give it to ``AsyncPredictor(notifications=...)``: responses then complete when their
    notification arrives (raw delivery or the SNS JSON envelope) instead of by polling S3.
    Each consumer process needs its own queue (see ``ensure_notification_queue``): SQS hands
    each message to one reader only. ``stats`` counts what the listeners did.

    Args:
        queue_url: The queue URL (``https://sqs.<region>.amazonaws.com/<account>/<name>``).
        wait_time_seconds: ReceiveMessage long-poll time, 1-20 s.
        visibility_timeout: VisibilityTimeout of received messages; None: the queue's own.
        safety_poll_interval: Seconds between S3 checks of a waiting response, for
            notifications that never arrive; the last check is made at the end of the wait.
        hold_seconds: How long a notification that arrives before anyone waits for it is kept.
        max_held: Most such notifications kept at once (the oldest are dropped first).
        unrecognized: What to do with malformed or foreign messages: ``"delete"`` them, or
            ``"leave"`` them for the queue's redrive policy (a dead-letter queue).
        retry_delay: First backoff after a failed SQS call (doubles up to ``max_retry_delay``).
        max_retry_delay: Longest backoff between SQS retries.
        shutdown_timeout: How long closing the predictor waits for an in-flight receive.

    Example:
        >>> queue = NotificationQueue(
        ...     "https://sqs.us-east-1.amazonaws.com/123456789012/my-endpoint-results"
        ... )
        >>> async with AsyncPredictor("my-endpoint", notifications=queue) as predictor:
        ...     response = await predictor.predict_async(data=b"...")
        ...     result = await response  # resolved by the notification
    """

    def __init__(
        self,
        queue_url: str,
        *,
        wait_time_seconds: int = 20,
        visibility_timeout: int | None = None,
        safety_poll_interval: float = 30.0,
        hold_seconds: float = 300.0,
        max_held: int = 10_000,
        unrecognized: Literal["delete", "leave"] = "delete",
        retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
        shutdown_timeout: float = 2.0,
    ) -> None:
        if not isinstance(queue_url, str):
            raise TypeError(f"queue_url must be a string, got {type(queue_url).__name__}")
        if queue_url.startswith("arn:"):
            raise ValueError(
                f"queue_url must be the queue URL, not its ARN ({queue_url!r}); get the URL "
                "with `aws sqs get-queue-url --queue-name <name>` or from "
                "ensure_notification_queue()"
            )
        parts = urlsplit(queue_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path in ("", "/"):
            raise ValueError(
                "queue_url must be an SQS queue URL such as "
                f"'https://sqs.us-east-1.amazonaws.com/123456789012/my-queue', got {queue_url!r}"
            )
        if isinstance(wait_time_seconds, bool) or wait_time_seconds not in range(1, 21):
            raise ValueError(
                f"wait_time_seconds must be an int from 1 to 20, got {wait_time_seconds!r}"
            )
        if visibility_timeout is not None and (
            isinstance(visibility_timeout, bool) or visibility_timeout not in range(43_201)
        ):
            raise ValueError(
                "visibility_timeout must be None or an int from 0 to 43200, got "
                f"{visibility_timeout!r}"
            )
        for name, value in (
            ("safety_poll_interval", safety_poll_interval),
            ("hold_seconds", hold_seconds),
            ("retry_delay", retry_delay),
            ("max_retry_delay", max_retry_delay),
            ("shutdown_timeout", shutdown_timeout),
        ):
            check_positive(f"NotificationQueue {name}", value)
        check_positive("NotificationQueue max_held", max_held, integer=True)
        if unrecognized not in ("delete", "leave"):
            raise ValueError(f"unrecognized must be 'delete' or 'leave', got {unrecognized!r}")
        self.queue_url = queue_url
        self.wait_time_seconds = wait_time_seconds
        self.visibility_timeout = visibility_timeout
        self.safety_poll_interval = float(safety_poll_interval)
        self.hold_seconds = float(hold_seconds)
        self.max_held = max_held
        self.unrecognized: Literal["delete", "leave"] = unrecognized
        self.retry_delay = float(retry_delay)
        self.max_retry_delay = float(max_retry_delay)
        self.shutdown_timeout = float(shutdown_timeout)
        self.stats = NotificationStats()

    def __repr__(self) -> str:
        return f"<NotificationQueue {self.queue_url!r}>"

    def listener(self, sqs: Any) -> SqsListener:
        """A new listener on this queue using the open aiobotocore SQS client ``sqs``."""
        return SqsListener(
            sqs,
            self.queue_url,
            self.stats,
            wait_time_seconds=self.wait_time_seconds,
            visibility_timeout=self.visibility_timeout,
            hold_seconds=self.hold_seconds,
            max_held=self.max_held,
            unrecognized=self.unrecognized,
            retry_delay=self.retry_delay,
            max_retry_delay=self.max_retry_delay,
            shutdown_timeout=self.shutdown_timeout,
        )


_ACTIVE: weakref.WeakValueDictionary[str, SqsListener] = weakref.WeakValueDictionary()
"""Queue URL -> the listener reading it in this process (two would split the messages)."""


def wait_budget(config: WaiterConfig, rng: random.Random) -> float:
    """Seconds a WaiterConfig allows: its delays summed, capped by ``timeout``."""
    if config.max_attempts is None:
        assert config.timeout is not None
        return float(config.timeout)
    total = 0.0
    for delay in config.delays(rng):
        total += delay
        if config.timeout is not None and total >= config.timeout:
            return float(config.timeout)
    return total


class InlineBody:
    """A streaming-body stand-in over the bytes of an inline response (for ``consume``)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    async def read(self, amt: int | None = None) -> bytes:
        end = len(self._data) if amt is None or amt < 0 else self._position + amt
        chunk = self._data[self._position : end]
        self._position += len(chunk)
        return chunk

    def close(self) -> None:
        self._position = len(self._data)


class NotificationWaiting:
    """Wait strategy: notifications first, a slow S3 poll as the safety net.

    Same results and exceptions as :class:`S3Polling`: ``waiter_config=None`` makes one check
    (a held notification, else S3); a WaiterConfig waits as long as its attempts and delays
    (and/or ``timeout``) allow, with an S3 check every ``safety_poll_interval`` seconds and a
    last one at the end. For a failure, the failure file is the source of truth when the
    response has a FailureLocation; the notification's ``failureReason`` is used otherwise.

    Args:
        source: The queue and its settings.
        sqs: An open aiobotocore SQS client (owned by the caller).
        transport: The S3 transport for result GETs and the safety-net poll.
    """

    def __init__(
        self,
        source: NotificationQueue,
        sqs: Any,
        transport: S3Transport,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.stats = source.stats
        self.listener = source.listener(sqs)
        self.transport = transport
        self.polling = S3Polling(transport, clock=clock, rng=rng)
        self.clock = clock
        self.rng = rng or random.Random()

    async def aclose(self) -> None:
        """Stop the listener (waits briefly for an in-flight receive)."""
        await self.listener.aclose()
        if _ACTIVE.get(self.source.queue_url) is self.listener:
            del _ACTIVE[self.source.queue_url]

    async def _start(self) -> None:
        other = _ACTIVE.get(self.source.queue_url)
        if other is not None and other is not self.listener and other.running:
            raise ValueError(
                f"the notification queue {self.source.queue_url} is already read by another "
                "predictor in this process; SQS would split the notifications between them. "
                "Give each predictor its own queue"
            )
        await self.listener.start()
        _ACTIVE[self.source.queue_url] = self.listener

    async def wait(
        self,
        locations: ResultLocations,
        waiter_config: WaiterConfig | None,
        consume: Consume[T],
    ) -> Outcome[T]:
        """Return the outcome, waiting as ``waiter_config`` allows (None: one check)."""
        await self._start()
        context = locations.context()
        output = str(locations.output)
        failure = None if locations.failure is None else str(locations.failure)
        waiter = self.listener.register(output, failure, locations.inference_id)
        try:
            if waiter_config is None:
                return await self._single_check(waiter.notification, locations, consume)
            started = self.clock()
            deadline = started + wait_budget(waiter_config, self.rng)
            next_check = min(started + self.source.safety_poll_interval, deadline)
            attempts = 0
            while True:
                if waiter.notification is None:
                    with anyio.move_on_after(max(0.0, next_check - self.clock())):
                        await waiter.event.wait()
                if waiter.notification is not None:
                    outcome = await self._resolve(waiter.notification, locations, consume)
                    if outcome is not None:
                        return outcome
                    # Announced but not readable: wait for a newer notification or the poll.
                    self.listener.unregister(waiter)
                    waiter = self.listener.register(
                        output, failure, locations.inference_id, use_held=False
                    )
                    continue
                last = self.clock() >= deadline - 1e-3
                attempts += 1
                self.stats.safety_checks += 1
                outcome = await self.polling.check(locations, consume)
                if outcome is not None:
                    self.stats.safety_results += 1
                    logger.debug("safety-net poll found %s without a notification", output)
                    return outcome
                if last:
                    break
                next_check = min(self.clock() + self.source.safety_poll_interval, deadline)
        finally:
            self.listener.unregister(waiter)
        seconds = round(self.clock() - started, 3)
        message = (
            f"{STILL_RUNNING} No notification for it arrived on {self.source.queue_url} either "
            "(is the queue subscribed to the endpoint's SuccessTopic and ErrorTopic?)."
        )
        raise PollingTimeoutError(message, seconds=seconds, attempts=attempts, **context)

    async def _single_check(
        self, held: Notification | None, locations: ResultLocations, consume: Consume[T]
    ) -> Outcome[T]:
        if held is not None:
            outcome = await self._resolve(held, locations, consume)
            if outcome is not None:
                return outcome
        self.stats.safety_checks += 1
        outcome = await self.polling.check(locations, consume)
        if outcome is None:
            raise ObjectNotExistedError("Inference could still be running", **locations.context())
        return outcome

    async def _resolve(
        self, notification: Notification, locations: ResultLocations, consume: Consume[T]
    ) -> Outcome[T] | None:
        """The outcome a notification announces; None if its S3 object is not there."""
        context = locations.context()
        if notification.succeeded:
            if notification.body is not None:
                self.stats.inline_results += 1
                value = await consume(InlineBody(notification.body))
                return Completed(
                    Fetched(
                        value=value,
                        content_type=notification.content_type or DEFAULT_CONTENT_TYPE,
                        content_length=len(notification.body),
                    )
                )
            self.stats.result_gets += 1
            fetched = await self.transport.get(locations.output, consume, **context)
            if fetched is None:
                logger.warning(
                    "notification says %s completed but the object is not there yet",
                    locations.output,
                )
                return None
            return Completed(fetched)
        if locations.failure is not None:
            self.stats.result_gets += 1
            failure = await self.transport.get(locations.failure, read_all, **context)
            if failure is not None:
                return Failed(failure_text(failure.value, locations.failure))
        return Failed(notification.failure_reason or _NO_REASON)
