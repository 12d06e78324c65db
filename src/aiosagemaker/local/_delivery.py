"""SNS-to-SQS delivery served by the emulator itself, into the queues moto holds.

moto's SNS builds a fresh 2048-bit RSA key and certificate for every enveloped delivery to an
SQS queue, so a topic with an enveloped subscriber saturates at a few dozen messages per
second. For topics the emulator publishes to, and whose subscriptions are all ``sqs`` queues in
the in-process moto, the emulator builds the SQS body itself, in SNS's format, and appends it
to the queue directly: raw (``RawMessageDelivery=true``: the bare message) or enveloped (the
SNS JSON envelope). Every other case (an ``http``/``lambda``/... subscription, a filter
policy, a FIFO topic, a queue moto does not hold) publishes through SNS as before.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from ._notify import iso_millis

logger = logging.getLogger("aiosagemaker.local")

SIGNATURE_VERSION = "1"
"""Real SNS's default; the signature itself is not verifiable (as with moto)."""


@dataclass(frozen=True)
class Target:
    """One SQS subscription: its queue and delivery form."""

    subscription_arn: str
    account_id: str
    region: str
    queue_name: str
    raw: bool


def envelope(
    *,
    topic_arn: str,
    message: str,
    message_id: str,
    subscription_arn: str,
    sns_url: str,
    now: datetime,
) -> str:
    """The SNS JSON envelope an SQS subscriber without raw delivery receives (key order of SNS)."""
    region = topic_arn.split(":")[3]
    fake = hashlib.sha256(f"{message_id}{message}".encode()).digest() * 8
    body = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic_arn,
        "Message": message,
        "Timestamp": iso_millis(now),
        "SignatureVersion": SIGNATURE_VERSION,
        "Signature": base64.b64encode(fake).decode("ascii"),
        "SigningCertURL": f"https://sns.{region}.amazonaws.com/"
        "SimpleNotificationService-aiosagemaker-local.pem",
        "UnsubscribeURL": f"{sns_url}/?Action=Unsubscribe&SubscriptionArn="
        f"{quote(subscription_arn, safe='')}",
    }
    return json.dumps(body, indent=2, separators=(",", " : "))


def _append(backend: Any, queue_name: str, body: str) -> None:
    """What moto's ``SendMessage`` does for a standard queue, without its per-call scan of the
    queue (``send_message`` computes every queue attribute, including three message counts)."""
    from moto.sqs.models import Message

    queue = backend.get_queue(queue_name)
    message = Message(str(uuid.uuid4()), body)
    message.mark_sent(delay_seconds=int(queue.delay_seconds or 0))
    queue.add_message(message)


def _is_true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


class DirectDelivery:
    """Deliver notifications into moto's in-process SQS queues (see the module docstring).

    Args:
        sns_url: The SNS URL clients use (for ``UnsubscribeURL``).
    """

    def __init__(self, sns_url: str) -> None:
        self._sns_url = sns_url

    def targets(self, topic_arn: str) -> list[Target] | None:
        """The SQS targets of ``topic_arn``, or ``None`` if this topic must go through SNS."""
        from moto.sns.models import sns_backends
        from moto.sqs.models import sqs_backends

        parts = topic_arn.split(":")
        if len(parts) != 6 or parts[5].endswith(".fifo"):
            return None
        account, region = parts[4], parts[3]
        backend = sns_backends[account][region]
        topic = backend.topics.get(topic_arn)
        if topic is None:
            return None
        targets: list[Target] = []
        for sub in list(backend.subscriptions.values()):
            if sub.topic is not topic:
                continue
            if sub.protocol != "sqs" or getattr(sub, "_filter_policy_matcher", None) is not None:
                return None
            queue_arn = str(sub.endpoint).split(":")
            if len(queue_arn) != 6:
                return None
            queue_region, queue_account, queue_name = queue_arn[3], queue_arn[4], queue_arn[5]
            queue = sqs_backends[queue_account][queue_region].queues.get(queue_name)
            if queue is None or queue.fifo_queue:
                return None
            raw = _is_true(sub.attributes.get("RawMessageDelivery"))
            targets.append(Target(sub.arn, queue_account, queue_region, queue_name, raw))
        return targets

    def deliver(self, topic_arn: str, message: str) -> bool:
        """Deliver ``message`` to every SQS subscriber; ``False`` if SNS must publish instead."""
        from moto.sqs.models import sqs_backends

        targets = self.targets(topic_arn)
        if targets is None:
            return False
        message_id = str(uuid.uuid4())
        now = datetime.now(timezone.utc)
        for target in targets:
            body = (
                message
                if target.raw
                else envelope(
                    topic_arn=topic_arn,
                    message=message,
                    message_id=message_id,
                    subscription_arn=target.subscription_arn,
                    sns_url=self._sns_url,
                    now=now,
                )
            )
            try:
                _append(sqs_backends[target.account_id][target.region], target.queue_name, body)
            except Exception as exc:  # the queue was deleted meanwhile, ...: SNS drops it too
                logger.warning("cannot deliver to queue %s: %s", target.queue_name, exc)
        return True
