"""Notification-driven completion: the SQS listener, SNS message parsing, and queue setup.

- :mod:`._queue`: :class:`NotificationQueue`, what a user hands to the predictor;
- :mod:`._listener`: the long-poll loop that routes notifications to the waiting engine;
- :mod:`._messages`: parsing raw and enveloped SageMaker notifications;
- :mod:`._setup`: ``ensure_notification_queue`` (queue, policy, subscriptions).
"""

from ._listener import NotificationStats
from ._queue import NotificationQueue
from ._setup import NotificationQueueSetup, ensure_notification_queue

__all__ = [
    "NotificationQueue",
    "NotificationQueueSetup",
    "NotificationStats",
    "ensure_notification_queue",
]
