"""SNS notifications delivered to SQS (raw and enveloped) in SageMaker's message schema."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from aiosagemaker.local import LocalEndpoint

from .local_helpers import client, get_object, notification, receive_all, submit, subscribe_queue

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def with_input(params: dict[str, str], response: dict[str, Any]) -> dict[str, str]:
    """Expected requestParameters: inputLocation appears when the body went through S3."""
    if response["InputLocation"] is not None:
        return {**params, "inputLocation": response["InputLocation"]}
    return params


@dataclass
class Queues:
    sqs: Any
    urls: dict[str, str]

    def messages(self, name: str) -> list[dict[str, Any]]:
        raw = name.endswith("raw")
        return [notification(body, raw=raw) for body in receive_all(self.sqs, self.urls[name])]

    def envelopes(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(body) for body in receive_all(self.sqs, self.urls[name])]


@pytest.fixture(scope="module")
def queues(emu: LocalEndpoint) -> Iterator[Queues]:
    """Raw and enveloped SQS subscriptions to the test topics."""
    sqs, sns = client("sqs", emu.env), client("sns", emu.env)
    notify, plain = emu.endpoint("notify"), emu.endpoint("notify-plain")
    suffix = uuid.uuid4().hex[:8]
    urls = {}
    topics = {
        "success": notify.success_topic_arn,
        "error": notify.error_topic_arn,
        "plain-success": plain.success_topic_arn,
        "plain-error": plain.error_topic_arn,
    }
    for label, arn in topics.items():
        assert arn is not None
        for raw in (True, False):
            name = f"{label}-{'raw' if raw else 'env'}"
            urls[name] = subscribe_queue(sqs, sns, arn, f"{name}-{suffix}", raw=raw)
    yield Queues(sqs, urls)
    for arn in {sub["SubscriptionArn"] for sub in sns.list_subscriptions()["Subscriptions"]}:
        if any(arn.startswith(f"{topic}:") for topic in topics.values()):
            sns.unsubscribe(SubscriptionArn=arn)
    for url in urls.values():
        sqs.delete_queue(QueueUrl=url)


def test_topics_are_created_from_names_and_arns(emu: LocalEndpoint) -> None:
    sns = client("sns", emu.env)
    arns = {topic["TopicArn"] for topic in sns.list_topics()["Topics"]}
    assert "arn:aws:sns:us-east-1:123456789012:emu-success" in arns
    assert "arn:aws:sns:us-east-1:123456789012:emu-plain-error" in arns
    config = emu.endpoint("notify").async_inference_config()
    assert config["OutputConfig"]["NotificationConfig"] == {
        "SuccessTopic": "arn:aws:sns:us-east-1:123456789012:emu-success",
        "ErrorTopic": "arn:aws:sns:us-east-1:123456789012:emu-error",
        "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC"],
    }


def test_success_notification_with_inline_response(
    emu: LocalEndpoint, runtime: Any, queues: Queues
) -> None:
    response = submit(
        runtime,
        emu.env,
        "notify",
        b'{"x": 1}',
        ContentType="application/json",
        Accept="application/json",
        InferenceId="notify-ok-1",
    )
    emu.wait_idle_sync(30)
    raw = queues.messages("success-raw")
    enveloped = queues.messages("success-env")
    assert len(raw) == 1 and raw == enveloped
    message = raw[0]
    assert re.fullmatch(TIMESTAMP, message.pop("eventTime"))
    assert re.fullmatch(TIMESTAMP, message.pop("receivedTime"))
    content = base64.b64decode(message.pop("responseBody").pop("content"))
    assert json.loads(content) == {"got": {"x": 1}}
    assert message == {
        "awsRegion": "us-east-1",
        "invocationStatus": "Completed",
        "requestParameters": with_input(
            {
                "accept": "application/json",
                "contentType": "application/json",
                "endpointName": "notify",
            },
            response,
        ),
        "responseParameters": {
            "contentType": "application/json",
            "outputLocation": response["OutputLocation"],
        },
        "inferenceId": "notify-ok-1",
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    assert queues.messages("error-raw") == []


def test_envelope_fields(emu: LocalEndpoint, runtime: Any, queues: Queues) -> None:
    submit(runtime, emu.env, "notify", b'{"y": 2}')
    emu.wait_idle_sync(30)
    (envelope,) = queues.envelopes("success-env")
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"] == emu.endpoint("notify").success_topic_arn
    assert {"MessageId", "Message", "Timestamp", "Signature"} <= set(envelope)
    queues.messages("success-raw")


def test_error_notification(emu: LocalEndpoint, runtime: Any, queues: Queues, s3: Any) -> None:
    input_location = "s3://emulator-test-inputs/boom.json"
    s3.put_object(Bucket="emulator-test-inputs", Key="boom.json", Body=b'{"fail": "boom"}')
    response = runtime.invoke_endpoint_async(
        EndpointName="notify", InputLocation=input_location, InferenceId="notify-fail-1"
    )
    emu.wait_idle_sync(30)
    (message,) = queues.messages("error-raw")
    assert queues.messages("error-env") == [message]
    assert message["invocationStatus"] == "Failed"
    assert message["inferenceId"] == "notify-fail-1"
    assert message["requestParameters"] == {
        "endpointName": "notify",
        "inputLocation": input_location,
    }
    assert message["responseParameters"]["failureLocation"] == response["FailureLocation"]
    assert "RuntimeError: boom" in message["failureReason"]
    assert "responseBody" not in message  # ERROR_NOTIFICATION_TOPIC not included
    reason, _ = get_object(s3, response["FailureLocation"])
    assert reason.decode() == message["failureReason"]
    assert queues.messages("success-raw") == []


def test_success_without_inline_response(emu: LocalEndpoint, runtime: Any, queues: Queues) -> None:
    response = submit(runtime, emu.env, "notify-plain", b'{"z": 3}')
    assert "FailureLocation" not in response  # endpoint has no S3FailurePath
    emu.wait_idle_sync(30)
    (message,) = queues.messages("plain-success-raw")
    assert "responseBody" not in message
    assert message["responseParameters"]["outputLocation"] == response["OutputLocation"]
    assert message["requestParameters"] == with_input({"endpointName": "notify-plain"}, response)
    queues.messages("plain-success-env")


def test_error_without_failure_path_includes_response(
    emu: LocalEndpoint, runtime: Any, queues: Queues
) -> None:
    before = emu.stats("notify-plain").failed
    submit(runtime, emu.env, "notify-plain", b'{"fail": "nope"}')
    emu.wait_idle_sync(30)
    (message,) = queues.messages("plain-error-raw")
    assert "failureLocation" not in message["responseParameters"]
    body = message["responseBody"]
    assert body["encoding"] == "BASE64"
    assert base64.b64decode(body["content"]).decode() == message["failureReason"]
    assert emu.stats("notify-plain").failed == before + 1
    queues.messages("plain-error-env")


def test_response_over_128_kib_is_not_inlined(
    emu: LocalEndpoint, runtime: Any, queues: Queues, s3: Any
) -> None:
    big = json.dumps({"pad": "p" * 140_000}).encode()  # via S3: inputs may exceed 128,000 B
    s3.put_object(Bucket="emulator-test-inputs", Key="big.json", Body=big)
    response = runtime.invoke_endpoint_async(
        EndpointName="notify", InputLocation="s3://emulator-test-inputs/big.json"
    )
    emu.wait_idle_sync(30)
    (message,) = queues.messages("success-raw")
    assert "responseBody" not in message
    assert len(get_object(s3, response["OutputLocation"])[0]) > 128 * 1024
    queues.messages("success-env")
