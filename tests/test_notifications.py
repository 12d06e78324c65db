"""Notification-driven completion against the emulator, with moto's SNS and SQS behind it.

Most tests read from a queue that is *not* subscribed to the endpoint's topics: a second,
subscribed "spy" queue captures each real notification, and the test decides what reaches the
listener (once, twice, early, never, mangled). Faults are injected on the server side only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

from aiosagemaker import (
    AsyncInferenceModelError,
    AsyncInferenceResponse,
    AsyncPredictor,
    NotificationQueue,
    NotificationStats,
    ObjectNotExistedError,
    PollingTimeoutError,
    ResultTooLargeError,
    UnexpectedClientError,
    WaiterConfig,
    ensure_notification_queue,
)
from aiosagemaker._notifications._listener import SqsListener
from aiosagemaker._notifications._messages import (
    Notification,
    UnrecognizedMessageError,
    parse_message,
)
from aiosagemaker.local import LocalEndpoint
from helpers import make_predictor, raw, until
from s3_fault_proxy import Fault, S3FaultProxy, running_proxy_async

pytestmark = pytest.mark.anyio

HERE = Path(__file__).parent
WAIT = WaiterConfig(max_attempts=None, timeout=20)
"""Up to 20 s; with the default 30 s safety-net interval only one S3 check, at the end."""

SUCCESS = {
    "awsRegion": "us-east-1",
    "eventTime": "2024-03-29T03:48:05.077Z",
    "receivedTime": "2024-03-29T03:48:04.279Z",
    "invocationStatus": "Completed",
    "requestParameters": {
        "accept": "application/json",
        "contentType": "application/json",
        "endpointName": "async-embed-endpoint",
        "inputLocation": "s3://bucket/in/x.json",
    },
    "responseParameters": {
        "contentType": "application/json",
        "outputLocation": "s3://bucket/out/dd33.out",
    },
    "inferenceId": "03a98604-1",
    "eventVersion": "1.0",
    "eventSource": "aws:sagemaker",
    "eventName": "InferenceResult",
}
FAILURE = {
    **{k: v for k, v in SUCCESS.items() if k != "responseParameters"},
    "invocationStatus": "Failed",
    "failureReason": "ClientError: Received server error (500) from model.",
}


def envelope(message: dict[str, Any], kind: str = "Notification") -> str:
    return json.dumps(
        {
            "Type": kind,
            "MessageId": str(uuid.uuid4()),
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Message": json.dumps(message),
            "Timestamp": "2024-03-29T03:48:05.100Z",
            "SignatureVersion": "1",
            "Signature": "x",
            "SigningCertURL": "https://example.invalid/cert.pem",
            "UnsubscribeURL": "https://example.invalid/unsubscribe",
        }
    )


# -- parsing (pure) ------------------------------------------------------------------------


def test_parse_success_raw_and_envelope() -> None:
    for body in (json.dumps(SUCCESS), envelope(SUCCESS)):
        notification = parse_message(body)
        assert notification.succeeded
        assert notification.inference_id == "03a98604-1"
        assert notification.output_location == "s3://bucket/out/dd33.out"
        assert notification.content_type == "application/json"
        assert notification.body is None


def test_parse_failure_location_in_both_places() -> None:
    top = {**FAILURE, "failureLocation": "s3://bucket/fail/a-error.out"}
    nested = {**FAILURE, "responseParameters": {"failureLocation": "s3://bucket/fail/b-error.out"}}
    assert parse_message(json.dumps(top)).failure_location == "s3://bucket/fail/a-error.out"
    parsed = parse_message(envelope(nested))
    assert not parsed.succeeded
    assert parsed.failure_location == "s3://bucket/fail/b-error.out"
    assert parsed.failure_reason == FAILURE["failureReason"]


def test_parse_inline_body() -> None:
    inline = {
        **SUCCESS,
        "responseBody": {
            "content": base64.b64encode(b'{"x": 1}').decode(),
            "message": "Check S3 path location(if configured) or Cloudwatch.",
            "encoding": "BASE64",
        },
    }
    assert parse_message(json.dumps(inline)).body == b'{"x": 1}'
    broken = {**inline, "responseBody": {"content": "%%%", "encoding": "BASE64"}}
    assert parse_message(json.dumps(broken)).body is None  # falls back to the S3 GET


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("not json", "malformed"),
        ("[1, 2]", "malformed"),
        (json.dumps({**SUCCESS, "invocationStatus": "Exploded"}), "malformed"),
        (
            json.dumps({"invocationStatus": "Completed", "eventSource": "aws:sagemaker"}),
            "malformed",
        ),
        (json.dumps({"Type": "Notification", "Message": "{oops"}), "malformed"),
        (envelope(SUCCESS, kind="SubscriptionConfirmation"), "foreign"),
        (json.dumps({"Records": [{"eventSource": "aws:s3"}]}), "foreign"),
        (json.dumps({**SUCCESS, "eventSource": "aws:other"}), "foreign"),
    ],
)
def test_parse_rejects_deliberately(body: str, kind: str) -> None:
    with pytest.raises(UnrecognizedMessageError) as caught:
        parse_message(body)
    assert caught.value.kind == kind


def test_notification_queue_validates_its_input() -> None:
    with pytest.raises(ValueError, match="not its ARN"):
        NotificationQueue("arn:aws:sqs:us-east-1:123456789012:q")
    with pytest.raises(ValueError, match="SQS queue URL"):
        NotificationQueue("my-queue")
    with pytest.raises(ValueError, match="wait_time_seconds"):
        NotificationQueue("https://sqs.us-east-1.amazonaws.com/1/q", wait_time_seconds=21)
    with pytest.raises(ValueError, match="safety_poll_interval"):
        NotificationQueue("https://sqs.us-east-1.amazonaws.com/1/q", safety_poll_interval=0)
    with pytest.raises(ValueError, match="unrecognized"):
        NotificationQueue("https://sqs.us-east-1.amazonaws.com/1/q", unrecognized="drop")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="NotificationQueue"):
        AsyncPredictor("e", notifications="https://sqs.us-east-1.amazonaws.com/1/q")  # type: ignore[arg-type]


# -- against the emulator ------------------------------------------------------------------


@dataclass
class Relay:
    """A spy queue subscribed to an endpoint's topics, and an unsubscribed target queue."""

    sqs: Any
    spy_url: str
    target_url: str
    held: dict[str, str] = field(default_factory=dict)
    """Notifications received while looking for another one, by inference id."""

    async def take(self, response: AsyncInferenceResponse) -> str:
        """The body of the real notification about ``response`` (others kept for later)."""
        with anyio.fail_after(20):
            while response.inference_id not in self.held:
                received = await self.sqs.receive_message(
                    QueueUrl=self.spy_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )
                for message in received.get("Messages", []):
                    await self.sqs.delete_message(
                        QueueUrl=self.spy_url, ReceiptHandle=message["ReceiptHandle"]
                    )
                    inference_id = parse_message(message["Body"]).inference_id
                    if inference_id is not None:
                        self.held[inference_id] = str(message["Body"])
            return self.held.pop(response.inference_id)

    async def send(self, body: str, copies: int = 1) -> None:
        for _ in range(copies):
            await self.sqs.send_message(QueueUrl=self.target_url, MessageBody=body)

    async def forward(self, response: AsyncInferenceResponse, copies: int = 1) -> str:
        body = await self.take(response)
        await self.send(body, copies)
        return body

    async def pending(self) -> int:
        """Messages still in the target queue, visible or in flight."""
        attributes = (
            await self.sqs.get_queue_attributes(
                QueueUrl=self.target_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
        )["Attributes"]
        return sum(int(value) for value in attributes.values())


def topics(local: LocalEndpoint, endpoint: str) -> list[str]:
    spec = local.endpoint(endpoint)
    return [arn for arn in (spec.success_topic_arn, spec.error_topic_arn) if arn]


@pytest.fixture
async def sqs(aws_env: dict[str, str]) -> AsyncIterator[Any]:
    from aiobotocore.session import get_session

    url = aws_env["AWS_ENDPOINT_URL_SQS"]
    async with get_session().create_client("sqs", endpoint_url=url) as client:
        yield client


@pytest.fixture
def relay_for(sqs: Any, local: LocalEndpoint) -> Callable[[str], Any]:
    async def make(endpoint: str) -> Relay:
        name = f"t-{uuid.uuid4().hex[:12]}"
        spy = await ensure_notification_queue(f"{name}-spy", topics(local, endpoint))
        target = (await sqs.create_queue(QueueName=f"{name}-target"))["QueueUrl"]
        return Relay(sqs, spy.queue_url, target)

    return make


def source(relay: Relay, **options: Any) -> NotificationQueue:
    """The listener's settings for tests: 1 s long polls, and a quick close."""
    options.setdefault("wait_time_seconds", 1)
    options.setdefault("shutdown_timeout", 0.1)
    return NotificationQueue(relay.target_url, **options)


def gets(proxy: S3FaultProxy, uri: str | None) -> int:
    assert uri is not None
    return proxy.count("GET", "/" + uri.removeprefix("s3://"))


async def test_success_one_get_no_polling(relay_for: Any, s3_proxy: S3FaultProxy) -> None:
    relay: Relay = await relay_for("notify")
    queue = source(relay, shutdown_timeout=5)  # close waits for the in-flight receive
    async with make_predictor("notify", notifications=queue) as predictor:
        response = await predictor.predict_async({"output": {"answer": 42}})
        async with anyio.create_task_group() as group:
            group.start_soon(relay.forward, response)
            assert await response.get_result(WAIT) == {"answer": 42}
        await until(lambda: queue.stats.deleted == 1)
    assert queue.stats.routed == 1 and queue.stats.safety_checks == 0
    assert gets(s3_proxy, response.output_path) == 1
    assert gets(s3_proxy, response.failure_path) == 0
    assert await relay.pending() == 0


async def test_sns_envelope_delivery(relay_for: Any, local: LocalEndpoint) -> None:
    """A queue subscribed without raw delivery: the listener reads the SNS JSON envelope."""
    relay: Relay = await relay_for("notify")
    setup = await ensure_notification_queue(
        f"t-{uuid.uuid4().hex[:12]}-env", topics(local, "notify"), raw_delivery=False
    )
    queue = NotificationQueue(setup.queue_url, wait_time_seconds=1, shutdown_timeout=0.1)
    async with make_predictor("notify", notifications=queue) as predictor:
        response = await predictor.predict_async({"output": "enveloped"})
        assert await response.get_result(WAIT) == "enveloped"
    assert queue.stats.routed == 1 and queue.stats.safety_checks == 0
    del relay


async def test_model_failure_reads_the_failure_file(relay_for: Any, s3_proxy: S3FaultProxy) -> None:
    relay: Relay = await relay_for("notify")
    queue = source(relay)
    async with make_predictor("notify", notifications=queue) as predictor:
        response = await predictor.predict_async({"fail": "input had 3 columns, expected 4"})
        await relay.forward(response)
        with pytest.raises(AsyncInferenceModelError, match="expected 4") as caught:
            await response.get_result(WAIT)
        async with make_predictor("notify") as polling:
            with pytest.raises(AsyncInferenceModelError) as polled:
                await polling.response_from_token(response.continuation_token()).get_result()
    assert str(caught.value) == str(polled.value)
    assert caught.value.failure_path == response.failure_path
    assert queue.stats.routed == 1 and queue.stats.safety_checks == 0
    # one look before reading the failure file (the output wins), and the single check's
    assert gets(s3_proxy, response.output_path) == 2


async def test_failure_without_failure_path_uses_failure_reason(relay_for: Any) -> None:
    relay: Relay = await relay_for("notify-no-failure-path")
    queue = source(relay)
    async with make_predictor("notify-no-failure-path", notifications=queue) as predictor:
        response = await predictor.predict_async({"fail": "no such column 'x'"})
        assert response.failure_path is None
        await relay.forward(response)
        with pytest.raises(AsyncInferenceModelError, match="no such column"):
            await response.get_result(WAIT)
    assert queue.stats.result_gets == 0


async def test_inline_body_makes_no_s3_get(relay_for: Any, s3_proxy: S3FaultProxy) -> None:
    relay: Relay = await relay_for("notify-inline")
    queue = source(relay)
    async with make_predictor("notify-inline", notifications=queue) as predictor:
        response = await predictor.predict_async({"output": [1, 2, 3]})
        await relay.forward(response)
        assert await response.get_result(WAIT) == [1, 2, 3]
    assert queue.stats.inline_results == 1 and queue.stats.result_gets == 0
    assert gets(s3_proxy, response.output_path) == 0
    assert gets(s3_proxy, response.failure_path) == 0


async def test_inline_body_respects_max_result_bytes(relay_for: Any) -> None:
    """An inline result over ``max_result_bytes`` raises as the same result read by GET does."""
    relay: Relay = await relay_for("notify-inline")
    queue = source(relay)
    payload = bytes(range(256)) * 8
    async with make_predictor(
        "notify-inline", notifications=queue, max_result_bytes=1000
    ) as predictor:
        response = await predictor.predict_async(raw(payload))
        await relay.forward(response)
        with pytest.raises(ResultTooLargeError, match="2,048 bytes") as caught:
            await response.get_result(WAIT)
    assert caught.value.output_path == response.output_path
    assert queue.stats.inline_results == 0 and queue.stats.routed == 1


async def test_duplicates_resolve_once(relay_for: Any, s3_proxy: S3FaultProxy) -> None:
    relay: Relay = await relay_for("notify")
    queue = source(relay)
    async with make_predictor("notify", notifications=queue) as predictor:
        response = await predictor.predict_async({"output": "once"})
        await relay.forward(response, copies=3)
        assert await response.get_result(WAIT) == "once"
        await until(lambda: queue.stats.deleted == 3)
    assert queue.stats.received == 3
    assert (queue.stats.routed, queue.stats.duplicates) == (1, 2)
    assert gets(s3_proxy, response.output_path) == 1
    assert await relay.pending() == 0


async def test_notification_before_registration_is_held(
    relay_for: Any, s3_proxy: S3FaultProxy
) -> None:
    relay: Relay = await relay_for("notify")
    queue = source(relay)
    async with make_predictor("notify", notifications=queue) as predictor:
        first = await predictor.predict_async({"output": 1})
        await relay.forward(first)
        assert await first.get_result(WAIT) == 1  # the listener is running from here on
        early = await predictor.predict_async({"output": 2})
        await relay.forward(early)
        await until(lambda: queue.stats.held == 1)
        assert await early.get_result() == 2  # a single check finds the held notification
    assert queue.stats.early_matched == 1 and queue.stats.safety_checks == 0
    assert gets(s3_proxy, early.output_path) == 1


async def test_single_check_without_notification(relay_for: Any) -> None:
    relay: Relay = await relay_for("notify")
    queue = source(relay)
    async with make_predictor("notify", notifications=queue) as predictor:
        response = await predictor.predict_async({"sleep": 1, "output": "late"})
        with pytest.raises(ObjectNotExistedError, match="Object not exist at s3://"):
            await response.get_result()
        await relay.forward(response)
        assert await response.get_result(WAIT) == "late"


async def test_malformed_and_foreign_messages_are_deleted(relay_for: Any) -> None:
    relay: Relay = await relay_for("notify")
    queue = source(relay)
    async with make_predictor("notify", notifications=queue) as predictor:
        response = await predictor.predict_async({"output": "still works"})
        for junk in ("not json", "[1]", json.dumps({**SUCCESS, "invocationStatus": "Exploded"})):
            await relay.send(junk)
        await relay.send(envelope(SUCCESS, kind="SubscriptionConfirmation"))
        await relay.forward(response)
        assert await response.get_result(WAIT) == "still works"
        await until(lambda: queue.stats.deleted == 5)
    assert (queue.stats.malformed, queue.stats.foreign, queue.stats.routed) == (3, 1, 1)
    assert await relay.pending() == 0


async def test_unrecognized_leave_keeps_messages_for_a_dead_letter_queue(relay_for: Any) -> None:
    relay: Relay = await relay_for("notify")
    queue = source(relay, unrecognized="leave", visibility_timeout=60)
    async with make_predictor("notify", notifications=queue) as predictor:
        response = await predictor.predict_async({"output": "ok"})
        await relay.send("not json")
        await relay.forward(response)
        assert await response.get_result(WAIT) == "ok"
        await until(lambda: queue.stats.malformed == 1 and queue.stats.deleted == 1)
    assert await relay.pending() == 1


async def test_lost_notification_is_finished_by_the_safety_poll(
    relay_for: Any, s3_proxy: S3FaultProxy
) -> None:
    relay: Relay = await relay_for("notify")
    queue = source(relay, safety_poll_interval=0.2)
    async with make_predictor("notify", notifications=queue) as predictor:
        response = await predictor.predict_async({"output": "found anyway"})
        await relay.take(response)  # taken from the spy, never delivered: lost
        assert await response.get_result(WAIT) == "found anyway"
    assert queue.stats.safety_results == 1 and queue.stats.routed == 0
    assert gets(s3_proxy, response.output_path) >= 1


async def test_timeout_keeps_polling_semantics(relay_for: Any) -> None:
    relay: Relay = await relay_for("notify")
    queue = source(relay)
    async with make_predictor("notify", notifications=queue) as predictor:
        response = await predictor.predict_async({"sleep": 30, "output": "too late"})
        started = time.monotonic()
        with pytest.raises(PollingTimeoutError, match=r"No result at s3://.*queue") as caught:
            await response.get_result(WaiterConfig(max_attempts=3, delay=0.1))
    # The final S3 check at the end of the budget is waited for (the config has no timeout),
    # and the wait ends long before the 30 s model would have written its result (a bound
    # with wide slack for a loaded machine: the attempts, not the model, end the wait).
    assert 0.15 <= time.monotonic() - started < 20
    assert caught.value.attempts == 1
    assert caught.value.inference_id == response.inference_id


async def test_missing_queue_is_an_actionable_error(aws_env: dict[str, str]) -> None:
    url = aws_env["AWS_ENDPOINT_URL_SQS"] + "/123456789012/no-such-queue-" + uuid.uuid4().hex
    async with make_predictor("notify", notifications=NotificationQueue(url)) as predictor:
        response = await predictor.predict_async({"output": 1})
        with pytest.raises(UnexpectedClientError, match=r"does not exist.*ensure_notification"):
            await response.get_result(WAIT)


async def test_listener_restarts_after_sqs_errors(
    relay_for: Any, local: LocalEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay: Relay = await relay_for("notify")
    queue = source(relay, retry_delay=0.02)
    async with running_proxy_async(local.env["AWS_ENDPOINT_URL_SQS"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.url)
        proxy.add(Fault("POST", "/", status=400, code="InvalidParameterValue", times=4))
        async with make_predictor("notify", notifications=queue) as predictor:
            response = await predictor.predict_async({"output": "recovered"})
            await relay.forward(response)
            assert await response.get_result(WAIT) == "recovered"
    assert queue.stats.receive_errors >= 2 and queue.stats.restarts >= 2
    assert queue.stats.routed == 1 and queue.stats.safety_checks == 0
    actions = [h.get("X-Amz-Target", "") for h in proxy.headers]
    assert "AmazonSQS.DeleteMessageBatch" in actions
    assert "AmazonSQS.DeleteMessage" not in actions  # deleted in batches only


async def test_two_listeners_on_one_queue_in_one_process_are_refused(relay_for: Any) -> None:
    relay: Relay = await relay_for("notify")
    async with (
        make_predictor("notify", notifications=source(relay)) as first,
        make_predictor("notify", notifications=source(relay)) as second,
    ):
        response = await first.predict_async({"output": 1})
        await relay.forward(response)
        assert await response.get_result(WAIT) == 1
        with pytest.raises(ValueError, match="already read by another predictor"):
            await second.response_from_token(response.continuation_token()).get_result()


async def test_ensure_notification_queue_is_idempotent(local: LocalEndpoint, sqs: Any) -> None:
    name = f"t-{uuid.uuid4().hex[:12]}-setup"
    arns = topics(local, "notify")
    first = await ensure_notification_queue(name, arns)
    second = await ensure_notification_queue(name, list(reversed(arns)), raw_delivery=False)
    assert (first.queue_url, first.queue_arn) == (second.queue_url, second.queue_arn)
    assert sorted(first.subscription_arns) == sorted(second.subscription_arns)
    policy = json.loads(
        (await sqs.get_queue_attributes(QueueUrl=first.queue_url, AttributeNames=["Policy"]))[
            "Attributes"
        ]["Policy"]
    )
    assert len(policy["Statement"]) == 1
    assert policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == sorted(arns)
    with pytest.raises(ValueError, match="topic ARN"):
        await ensure_notification_queue(name, ["notify-success"])
    with pytest.raises(ValueError, match="standard queue"):
        await ensure_notification_queue(name + ".fifo", arns)
    missing = arns[0].rsplit(":", 1)[0] + ":no-such-topic"
    with pytest.raises(UnexpectedClientError, match="no-such-topic"):
        await ensure_notification_queue(name, [missing])


def test_two_consumer_processes_share_an_endpoint(local: LocalEndpoint) -> None:
    """Each process has its own subscribed queue; every result arrives exactly once."""
    env = {**os.environ, **local.env}
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    count = 20
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "notification_consumer.py"),
                f"t-{uuid.uuid4().hex[:12]}-consumer-{index}",
                str(count),
                *topics(local, "notify"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        reports.append(json.loads(out))
    for report in reports:
        assert report["results"] == report["expected"]
        stats = NotificationStats(**report["stats"])
        assert stats.routed + stats.early_matched == count
        assert stats.safety_checks == 0 and stats.malformed == 0
    tokens = [set(map(str, r["expected"])) for r in reports]
    assert not tokens[0] & tokens[1]


def test_held_notifications_are_bounded_in_time_and_number() -> None:
    now = [0.0]
    stats = NotificationStats()
    listener = SqsListener(
        None, "http://q", stats, hold_seconds=10, max_held=2, clock=lambda: now[0]
    )

    def note(index: int) -> Notification:
        return Notification(True, f"id-{index}", f"s3://b/out/{index}.out", None, body=b"x")

    for index in range(4):
        listener.route(note(index))
    assert stats.held == 4
    oldest = listener.register("s3://b/out/0.out", None, "id-0")
    assert oldest.notification is None  # evicted: only the newest two are kept
    assert listener.register("s3://b/out/1.out", None, "id-1").notification is None
    newest = listener.register("s3://b/out/3.out", None, "id-3")
    assert newest.notification == note(3) and stats.early_matched == 1
    now[0] = 11.0
    assert listener.register("s3://b/out/2.out", None, "id-2").notification is None  # expired


def test_routing_by_inference_id_respects_locations() -> None:
    stats = NotificationStats()
    listener = SqsListener(None, "http://q", stats)
    waiter = listener.register("s3://b/out/1.out", "s3://b/fail/1.out", "same-id")
    other = Notification(True, "same-id", "s3://b/out/2.out", None)
    listener.route(other)  # a reused inference id with another location: not this response
    assert waiter.notification is None
    failed = Notification(False, "same-id", None, None, failure_reason="boom")
    listener.route(failed)  # no location at all: routed by inference id
    assert waiter.notification == failed


async def test_cancelled_wait_leaves_the_listener_running(relay_for: Any) -> None:
    relay: Relay = await relay_for("notify")
    queue = source(relay)
    async with make_predictor("notify", notifications=queue) as predictor:
        first = await predictor.predict_async({"output": "first"})
        with anyio.move_on_after(0.3) as scope:
            await first.get_result(WAIT)
        assert scope.cancelled_caught
        second = await predictor.predict_async({"output": "second"})
        await relay.forward(first)
        await relay.forward(second)
        assert await second.get_result(WAIT) == "second"
        assert await first.get_result(WAIT) == "first"
    assert queue.stats.receive_errors == 0 and queue.stats.safety_checks == 0


async def test_download_from_an_inline_body(relay_for: Any, tmp_path: Path) -> None:
    relay: Relay = await relay_for("notify-inline")
    queue = source(relay)
    payload = bytes(range(256)) * 40
    async with make_predictor("notify-inline", notifications=queue) as predictor:
        response = await predictor.predict_async(raw(payload, "application/x-test"))
        await relay.forward(response)
        target = tmp_path / "result.bin"
        assert await response.download(target, WAIT, chunk_size=1000) == "application/x-test"
    assert await anyio.Path(target).read_bytes() == payload
    assert queue.stats.inline_results == 1 and queue.stats.result_gets == 0


# -- at volume: concurrent receives, background deletes -------------------------------------


class SqsProxy(S3FaultProxy):
    """The recording proxy in front of SQS; it holds back the answer to the first
    DeleteMessageBatch (after SQS carried it out) until :attr:`release` is set."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.release = threading.Event()
        self.holding = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not request.headers.get("X-Amz-Target", "").endswith("DeleteMessageBatch"):
            return await super()._handle(request)
        body = await request.read()
        index, _ = self._match(request.method, request.path_qs, dict(request.headers))
        response = await self._forward(request, body, index)
        if self.holding == 0:
            self.holding += 1
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return response


def synthetic(index: int) -> str:
    """A raw-delivery success notification for a result nobody waits for."""
    parameters = {"contentType": "application/json", "outputLocation": f"s3://b/out/{index}.out"}
    return json.dumps({**SUCCESS, "inferenceId": f"id-{index}", "responseParameters": parameters})


async def preloaded_queue(sqs: Any, count: int) -> str:
    """A new queue holding ``count`` distinct notifications."""
    url = str((await sqs.create_queue(QueueName=f"t-{uuid.uuid4().hex[:12]}-load"))["QueueUrl"])
    for start in range(0, count, 10):
        entries = [
            {"Id": str(i), "MessageBody": synthetic(i)}
            for i in range(start, min(count, start + 10))
        ]
        sent = await sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not sent.get("Failed")
    return url


async def queued(sqs: Any, url: str) -> int:
    """Messages still in a queue, visible or in flight (moto counts them exactly)."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names))["Attributes"]
    return sum(int(value) for value in attributes.values())


async def test_many_results_are_all_detected_and_each_deleted_once(
    local: LocalEndpoint, s3_proxy: S3FaultProxy, sqs: Any
) -> None:
    count = 120
    setup = await ensure_notification_queue(
        f"t-{uuid.uuid4().hex[:12]}-many", topics(local, "notify")
    )
    queue = NotificationQueue(setup.queue_url, wait_time_seconds=1, receivers=4)
    async with make_predictor("notify", notifications=queue) as predictor:
        responses = [await predictor.predict_async({"output": index}) for index in range(count)]
        results: dict[int, Any] = {}

        async def wait(index: int, response: AsyncInferenceResponse) -> None:
            results[index] = await response.get_result(WAIT)

        async with anyio.create_task_group() as group:
            for index, response in enumerate(responses):
                group.start_soon(wait, index, response)
        await until(lambda: queue.stats.deleted == count, deadline=30)
    assert results == {index: index for index in range(count)}
    stats = queue.stats
    assert stats.received == stats.deleted == count
    assert stats.routed + stats.early_matched == count and stats.duplicates == 0
    assert stats.safety_checks == 0 and stats.receive_errors == 0
    assert stats.result_gets == count  # 1.00 S3 read per result
    assert [gets(s3_proxy, response.output_path) for response in responses] == [1] * count
    assert await queued(sqs, setup.queue_url) == 0


async def test_receiving_goes_on_while_a_delete_hangs(local: LocalEndpoint, sqs: Any) -> None:
    """Deletes run off the receive path: while the answer to one DeleteMessageBatch is held
    back, every message is still received and routed, and the others are deleted."""
    from aiobotocore.session import get_session

    count = 60
    url = await preloaded_queue(sqs, count)
    proxy = SqsProxy(local.env["AWS_ENDPOINT_URL_SQS"])
    await anyio.to_thread.run_sync(proxy.start)
    try:
        async with get_session().create_client("sqs", endpoint_url=proxy.url) as via_proxy:
            source = NotificationQueue(url, wait_time_seconds=1, shutdown_timeout=5)
            listener = source.listener(via_proxy)
            await listener.start()
            try:
                await until(lambda: source.stats.held == count, deadline=30)
                await until(lambda: source.stats.deleted >= count - 10, deadline=30)
                assert proxy.holding == 1 and not proxy.release.is_set()
                proxy.release.set()
                await until(lambda: source.stats.deleted == count, deadline=30)
            finally:
                proxy.release.set()
                await listener.aclose()
    finally:
        await anyio.to_thread.run_sync(proxy.stop)
    assert source.stats.received == count and source.stats.duplicates == 0
    actions = [h.get("X-Amz-Target", "") for h in proxy.headers]
    assert "AmazonSQS.DeleteMessage" not in actions  # deleted in batches only
    assert await queued(sqs, url) == 0


async def test_close_mid_flight_loses_nothing_and_deletes_each_message_once(sqs: Any) -> None:
    """Closing while messages keep arriving: whatever was received was acted on and its
    delete flushed; the rest stays queued for the next reader. Across two listeners each
    message is taken and deleted exactly once."""
    count = 300
    url = await preloaded_queue(sqs, count)
    options: dict[str, Any] = {"wait_time_seconds": 1, "visibility_timeout": 2, "receivers": 4}
    options["shutdown_timeout"] = 10  # generous: the flush must not be cut short
    first = NotificationQueue(url, **options)
    listener = first.listener(sqs)
    await listener.start()
    await until(lambda: first.stats.received >= 30, deadline=30)
    await listener.aclose()
    taken = first.stats.held
    assert 30 <= taken < count  # closed mid-flight
    assert first.stats.received == taken == first.stats.deleted  # acted on, then deleted
    assert await queued(sqs, url) == count - taken

    second = NotificationQueue(url, **options)
    listener = second.listener(sqs)
    await listener.start()
    try:
        await until(lambda: second.stats.deleted == count - taken, deadline=60)
    finally:
        await listener.aclose()
    assert second.stats.held == second.stats.received == count - taken
    assert first.stats.deleted + second.stats.deleted == count
    assert await queued(sqs, url) == 0
