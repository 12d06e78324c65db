"""The notification source a user configures: an SQS queue subscribed to the SNS topics.

:class:`NotificationQueue` is what a user hands to ``AsyncPredictor(notifications=...)``. The
predictor's waiting engine builds one :class:`~._listener.SqsListener` from it, which
resolves the engine's registry entries; the engine's scheduler runs the slow S3 safety-net
checks for notifications that never arrive.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from .._config import check_positive
from ._listener import NotificationStats, SqsListener

__all__ = ["NotificationQueue", "NotificationStats"]


class NotificationQueue:
    """An SQS queue subscribed to an endpoint's SuccessTopic and ErrorTopic.

    Give it to ``AsyncPredictor(notifications=...)``: responses then complete when their
    notification arrives (raw delivery or the SNS JSON envelope) instead of by polling S3.
    Each consumer process needs its own queue (see ``ensure_notification_queue``): SQS hands
    each message to one reader only. ``stats`` counts what the listeners did.

    Args:
        queue_url: The queue URL (``https://sqs.<region>.amazonaws.com/<account>/<name>``).
        wait_time_seconds: ReceiveMessage long-poll time, 1-20 s.
        receivers: Most ReceiveMessage calls in flight at once, 1-20 (one while the queue is
            idle; more while messages keep arriving). As many DeleteMessageBatch calls may
            run in the background.
        visibility_timeout: VisibilityTimeout of received messages; None: the queue's own.
        safety_poll_interval: Seconds between S3 checks of a waiting response, for
            notifications that never arrive; the last check is made at the end of the wait.
        hold_seconds: How long a notification that arrives before anyone waits for it is kept.
        max_held: Most such notifications kept at once (the oldest are dropped first).
        unrecognized: What to do with malformed or foreign messages: ``"delete"`` them, or
            ``"leave"`` them for the queue's redrive policy (a dead-letter queue).
        retry_delay: First backoff after a failed SQS call (doubles up to ``max_retry_delay``).
        max_retry_delay: Longest backoff between SQS retries.
        shutdown_timeout: How long closing the predictor waits for in-flight receives, and
            then for the pending deletes.

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
        receivers: int = 4,
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
        if isinstance(receivers, bool) or receivers not in range(1, 21):
            raise ValueError(f"receivers must be an int from 1 to 20, got {receivers!r}")
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
        self.receivers = receivers
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
            receivers=self.receivers,
            visibility_timeout=self.visibility_timeout,
            hold_seconds=self.hold_seconds,
            max_held=self.max_held,
            unrecognized=self.unrecognized,
            retry_delay=self.retry_delay,
            max_retry_delay=self.max_retry_delay,
            shutdown_timeout=self.shutdown_timeout,
        )
