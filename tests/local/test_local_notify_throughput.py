"""Notifications at volume: every one delivered exactly once, in SNS's raw and enveloped forms.

Correctness only; the rate is measured by ``benchmarks/bench_emulator.py``. Three threads
long-poll each queue at once, so moto's receive path is exercised concurrently.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from aiosagemaker.local import EndpointSpec, LocalEndpoint
from aiosagemaker.local._delivery import DirectDelivery

from .local_helpers import client, receive_all, submit, subscribe_queue

COUNT = 300
RECEIVERS = 3
DEADLINE_SECONDS = 180.0
ENVELOPE_KEYS = {
    "Type",
    "MessageId",
    "TopicArn",
    "Message",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
    "UnsubscribeURL",
}


@pytest.fixture(scope="module", params=["emulator", "sns"])
def emulator(request: pytest.FixtureRequest) -> Iterator[LocalEndpoint]:
    spec = EndpointSpec(
        name="volume",
        model="aiosagemaker.local.models:echo",
        success_topic="volume-done",
        max_concurrent_invocations_per_instance=16,
    )
    with LocalEndpoint(spec, notification_delivery=request.param) as local:
        yield local


def _consume(
    sqs: Any, url: str, bodies: list[str], lock: threading.Lock, stop: threading.Event
) -> None:
    while not stop.is_set():
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        with lock:
            bodies.extend(m["Body"] for m in messages)
        if messages:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )


def _collect(
    env: dict[str, str], url: str, count: int
) -> tuple[list[str], threading.Event, list[threading.Thread]]:
    bodies: list[str] = []
    lock, stop = threading.Lock(), threading.Event()
    threads = [
        threading.Thread(target=_consume, args=(client("sqs", env), url, bodies, lock, stop))
        for _ in range(RECEIVERS)
    ]
    for thread in threads:
        thread.start()
    return bodies, stop, threads


def test_every_notification_once_in_both_forms(emulator: LocalEndpoint) -> None:
    env = emulator.env
    topic = emulator.endpoint("volume").success_topic_arn
    assert topic is not None
    sqs, sns = client("sqs", env), client("sns", env)
    suffix = uuid.uuid4().hex[:8]
    urls = {
        raw: subscribe_queue(sqs, sns, topic, f"volume-{raw}-{suffix}", raw=raw)
        for raw in (True, False)
    }
    collectors = {raw: _collect(env, url, COUNT) for raw, url in urls.items()}
    runtime = client("sagemaker-runtime", env)
    try:
        ids = [
            submit(runtime, env, "volume", b"%d" % i, ContentType="text/plain")["InferenceId"]
            for i in range(COUNT)
        ]
        emulator.wait_idle_sync(DEADLINE_SECONDS)
        for raw, (bodies, _, _) in collectors.items():
            condition_met = _wait_len(bodies, COUNT, DEADLINE_SECONDS)
            assert condition_met, f"raw={raw}: {len(bodies)} of {COUNT} notifications"
    finally:
        for _, stop, threads in collectors.values():
            stop.set()
            for thread in threads:
                thread.join(30)
    for raw, (bodies, _, _) in collectors.items():
        assert receive_all(sqs, urls[raw]) == []  # nothing left over
        messages = []
        for body in bodies:
            data = json.loads(body)
            if not raw:
                assert set(data) == ENVELOPE_KEYS
                assert data["Type"] == "Notification" and data["TopicArn"] == topic
                data = json.loads(data["Message"])
            messages.append(data)
        counts = Counter(m["inferenceId"] for m in messages)
        assert counts == Counter(ids), f"raw={raw}: duplicates or losses"
        for message in messages:
            assert message["invocationStatus"] == "Completed"
            assert message["eventSource"] == "aws:sagemaker"
            assert message["requestParameters"]["endpointName"] == "volume"
            assert message["responseParameters"]["outputLocation"].startswith("s3://")


def _wait_len(items: list[str], count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while len(items) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_topics_with_other_subscribers_go_through_sns(emulator: LocalEndpoint) -> None:
    env = emulator.env
    sqs, sns = client("sqs", env), client("sns", env)
    arn = sns.create_topic(Name=f"filtered-{uuid.uuid4().hex[:8]}")["TopicArn"]
    direct = DirectDelivery(emulator.sns_url or "")
    assert direct.targets(arn) == []
    url = subscribe_queue(sqs, sns, arn, f"filtered-{uuid.uuid4().hex[:8]}", raw=True)
    [target] = direct.targets(arn) or []
    assert target.raw and url.endswith(target.queue_name)
    subscription = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"][0]
    sns.set_subscription_attributes(
        SubscriptionArn=subscription["SubscriptionArn"],
        AttributeName="FilterPolicy",
        AttributeValue=json.dumps({"kind": ["x"]}),
    )
    assert direct.targets(arn) is None  # a filter policy: SNS itself must decide
    assert direct.targets(arn.removesuffix(arn.rsplit(":", 1)[1]) + "missing") is None
