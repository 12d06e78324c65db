"""Create, idempotently, an SQS queue subscribed to an endpoint's SNS topics.

Only SQS and SNS calls present in both aiobotocore 2.25 (botocore 1.40) and 3.x are used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .._aws_errors import error_code
from .._clients import ClientFactory
from .._exceptions import UnexpectedClientError

__all__ = ["NotificationQueueSetup", "ensure_notification_queue"]

_SID = "aiosagemaker-sns-delivery"


@dataclass(frozen=True, slots=True)
class NotificationQueueSetup:
    """What :func:`ensure_notification_queue` made sure of."""

    queue_url: str
    queue_arn: str
    subscription_arns: tuple[str, ...]


def _check_topics(topic_arns: Sequence[str]) -> list[str]:
    if isinstance(topic_arns, str):
        topic_arns = [topic_arns]
    topics = list(dict.fromkeys(topic_arns))
    if not topics:
        raise ValueError(
            "topic_arns is empty: pass the endpoint's SuccessTopic and ErrorTopic ARNs "
            "(AsyncInferenceConfig.OutputConfig.NotificationConfig)"
        )
    for topic in topics:
        if not isinstance(topic, str) or not topic.startswith("arn:") or ":sns:" not in topic:
            raise ValueError(f"not an SNS topic ARN: {topic!r} (expected arn:aws:sns:...)")
    return topics


def queue_policy(existing: str | None, queue_arn: str, topic_arns: Sequence[str]) -> str:
    """The queue's access policy with our SNS-delivery statement added or replaced."""
    document: dict[str, Any] = {"Version": "2012-10-17", "Statement": []}
    if existing:
        try:
            loaded = json.loads(existing)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict) and isinstance(loaded.get("Statement"), list):
            document = loaded
    statements = [s for s in document["Statement"] if s.get("Sid") != _SID]
    statements.append(
        {
            "Sid": _SID,
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": sorted(topic_arns)}},
        }
    )
    document["Statement"] = statements
    return json.dumps(document, sort_keys=True)


async def _subscription(sns: Any, topic: str, queue_arn: str) -> str | None:
    token: str | None = None
    while True:
        params: dict[str, Any] = {"TopicArn": topic}
        if token:
            params["NextToken"] = token
        page = await sns.list_subscriptions_by_topic(**params)
        for subscription in page.get("Subscriptions", []):
            if subscription.get("Protocol") == "sqs" and subscription.get("Endpoint") == queue_arn:
                return str(subscription["SubscriptionArn"])
        token = page.get("NextToken")
        if not token:
            return None


async def ensure_notification_queue(
    queue_name: str,
    topic_arns: Sequence[str],
    *,
    raw_delivery: bool = True,
    visibility_timeout: int = 60,
    message_retention_seconds: int = 86_400,
    session: Any = None,
    client_config: Any = None,
) -> NotificationQueueSetup:
    """Create the queue, its access policy and its topic subscriptions; safe to repeat.

    Use one queue per consumer process (for example ``f"{endpoint}-results-{hostname}"``):
    each queue gets every notification of the endpoint, and each process reads only its own.

    Args:
        queue_name: Name of the (standard) queue.
        topic_arns: The endpoint's SuccessTopic and ErrorTopic ARNs.
        raw_delivery: Subscribe with RawMessageDelivery (the listener reads both forms).
        visibility_timeout: The queue's VisibilityTimeout in seconds.
        message_retention_seconds: How long undelivered notifications are kept.
        session: ``aioboto3.Session`` or aiobotocore ``AioSession`` (default: a new one).
        client_config: A botocore ``Config`` merged over the library's defaults.

    Returns:
        The queue URL and ARN and the subscription ARNs.

    Raises:
        ValueError: A name or ARN is malformed.
        UnexpectedClientError: SQS or SNS refused a call (the message says which).

    Example:
        >>> setup = await ensure_notification_queue(
        ...     "my-endpoint-results-worker-1",
        ...     ["arn:aws:sns:us-east-1:123456789012:my-endpoint-success",
        ...      "arn:aws:sns:us-east-1:123456789012:my-endpoint-error"],
        ... )
        >>> queue = NotificationQueue(setup.queue_url)
    """
    if not isinstance(queue_name, str) or not queue_name or queue_name.endswith(".fifo"):
        raise ValueError(
            f"queue_name must be the name of a standard queue (SNS standard topics cannot "
            f"deliver to FIFO queues), got {queue_name!r}"
        )
    topics = _check_topics(topic_arns)
    factory = ClientFactory(session, client_config)
    step = "CreateQueue"
    try:
        async with factory.client("sqs") as sqs, factory.client("sns") as sns:
            queue_url = str((await sqs.create_queue(QueueName=queue_name))["QueueUrl"])
            step = "GetQueueAttributes"
            attributes = (
                await sqs.get_queue_attributes(
                    QueueUrl=queue_url, AttributeNames=["QueueArn", "Policy"]
                )
            )["Attributes"]
            queue_arn = str(attributes["QueueArn"])
            step = "SetQueueAttributes"
            await sqs.set_queue_attributes(
                QueueUrl=queue_url,
                Attributes={
                    "Policy": queue_policy(attributes.get("Policy"), queue_arn, topics),
                    "VisibilityTimeout": str(visibility_timeout),
                    "MessageRetentionPeriod": str(message_retention_seconds),
                },
            )
            raw = "true" if raw_delivery else "false"
            subscriptions = []
            for topic in topics:
                step = f"Subscribe to {topic}"
                arn = await _subscription(sns, topic, queue_arn)
                if arn is None:
                    created = await sns.subscribe(
                        TopicArn=topic,
                        Protocol="sqs",
                        Endpoint=queue_arn,
                        Attributes={"RawMessageDelivery": raw},
                        ReturnSubscriptionArn=True,
                    )
                    arn = str(created["SubscriptionArn"])
                else:
                    await sns.set_subscription_attributes(
                        SubscriptionArn=arn, AttributeName="RawMessageDelivery", AttributeValue=raw
                    )
                subscriptions.append(arn)
    except ClientError as error:
        code = error_code(error) or ""
        hint = (
            " The topic does not exist: check the ARN and the region."
            if code in ("NotFound", "NotFoundException")
            else ""
        )
        raise UnexpectedClientError(
            f"setting up notification queue {queue_name!r} failed at {step}: {error}.{hint}",
            code=code,
        ) from error
    except BotoCoreError as error:
        raise UnexpectedClientError(
            f"setting up notification queue {queue_name!r} failed at {step}: {error}"
        ) from error
    return NotificationQueueSetup(queue_url, queue_arn, tuple(subscriptions))
