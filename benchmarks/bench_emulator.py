"""Benchmark the local emulator: startup, InvokeEndpointAsync throughput, notifications.

Run: ``python benchmarks/bench_emulator.py --output benchmarks/emulator.json``

* startup: from importing ``aiosagemaker.local`` to the first accepted (202) invocation;
* throughput: ``--invocations`` calls of the no-op ``echo`` model through an aiobotocore
  client over loopback with ``--concurrency`` calls in flight; reports accepted/s (202s) and
  completed/s (result objects written to moto's S3);
* notifications: for each delivery (``sns``: published through moto's SNS, which delivers to
  SQS; ``emulator``: delivered by the emulator into moto's SQS queue) and each form (raw,
  enveloped), ``--notifications`` messages in SageMaker's schema go through the emulator's
  notification path while 4 long-polling receivers (10 per ReceiveMessage, batch delete) read
  the queue; reports notifications/s from the first publish to the last receive, and checks
  that every notification arrived exactly once. ``end_to_end`` does the same with real
  invocations (accept, model, S3 result, notification), whose rate moto's S3 bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any


async def _invoke_all(
    runtime: Any, count: int, concurrency: int, inline: bool, location: str
) -> list[float]:
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(index: int) -> None:
        async with semaphore:
            started = time.perf_counter()
            if inline:
                await runtime.invoke_endpoint_async(
                    EndpointName="bench", Body=b'{"i": %d}' % index, ContentType="application/json"
                )
            else:
                await runtime.invoke_endpoint_async(EndpointName="bench", InputLocation=location)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one(i) for i in range(count)))
    return latencies


async def run(count: int, concurrency: int) -> dict[str, Any]:
    """Start the emulator, measure, stop it; return the results."""
    t0 = time.perf_counter()
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    from aiosagemaker.local import EndpointSpec, LocalEndpoint

    imported = time.perf_counter()
    spec = EndpointSpec(
        name="bench",
        model="aiosagemaker.local.models:echo",
        max_concurrent_invocations_per_instance=concurrency,
    )
    async with LocalEndpoint(spec) as local:
        started = time.perf_counter()
        env = local.env
        session = get_session()
        kwargs: dict[str, Any] = {
            "region_name": env["AWS_DEFAULT_REGION"],
            "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "config": AioConfig(max_pool_connections=concurrency, retries={"mode": "standard"}),
        }
        async with (
            session.create_client(
                "sagemaker-runtime", endpoint_url=local.runtime_url, **kwargs
            ) as runtime,
            session.create_client("s3", endpoint_url=local.s3_url, **kwargs) as s3,
        ):
            members = runtime.meta.service_model.operation_model("InvokeEndpointAsync")
            inline = "Body" in members.input_shape.members
            location = "s3://aiosagemaker-local/bench/input.json"
            await s3.put_object(Bucket="aiosagemaker-local", Key="bench/input.json", Body=b"{}")
            first_started = time.perf_counter()
            await _invoke_all(runtime, 1, 1, inline, location)
            first_accepted = time.perf_counter()
            await local.wait_idle(60)

            begin = time.perf_counter()
            latencies = await _invoke_all(runtime, count, concurrency, inline, location)
            accepted_at = time.perf_counter()
            await local.wait_idle(600)
            done_at = time.perf_counter()
        stats = local.stats("bench")
    latencies.sort()
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "inline_body": inline,
        "startup": {
            "import_s": round(imported - t0, 3),
            "start_s": round(started - imported, 3),
            "client_and_first_accept_s": round(first_accepted - started, 3),
            "first_accept_latency_s": round(first_accepted - first_started, 3),
            "total_to_first_accept_s": round(first_accepted - t0, 3),
        },
        "throughput": {
            "invocations": count,
            "concurrency": concurrency,
            "accepted_per_s": round(count / (accepted_at - begin), 1),
            "completed_per_s": round(count / (done_at - begin), 1),
            "accept_latency_p50_ms": round(statistics.median(latencies) * 1000, 2),
            "accept_latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
            "completed": stats.completed,
            "failed": stats.failed + stats.expired,
            "max_in_flight": stats.max_in_flight,
        },
    }


RECEIVERS = 4


async def _receive(
    sqs: Any, url: str, raw: bool, expected: int, seen: dict[str, int], done: asyncio.Event
) -> None:
    while not done.is_set():
        response = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        messages = response.get("Messages", [])
        for message in messages:
            body = json.loads(message["Body"])
            if not raw:
                assert body["Type"] == "Notification"
                body = json.loads(body["Message"])
            seen[body["inferenceId"]] = seen.get(body["inferenceId"], 0) + 1
        if messages:
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ]
            await sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        if len(seen) >= expected:
            done.set()


async def _consume(env: dict[str, str], url: str, raw: bool, expected: int, pipe: Any) -> None:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    session = get_session()
    async with session.create_client(
        "sqs",
        endpoint_url=env["AWS_ENDPOINT_URL_SQS"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=AioConfig(max_pool_connections=RECEIVERS * 2),
    ) as sqs:
        await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        seen: dict[str, int] = {}
        done = asyncio.Event()
        pipe.send("ready")
        await asyncio.gather(
            *(_receive(sqs, url, raw, expected, seen, done) for _ in range(RECEIVERS))
        )
    pipe.send(seen)


def consumer_process(env: dict[str, str], url: str, raw: bool, expected: int, pipe: Any) -> None:
    """A client's SQS long-poll consumer, in its own process (as a user's service would be)."""
    asyncio.run(_consume(env, url, raw, expected, pipe))


async def notifications(
    count: int, delivery: str, raw: bool, end_to_end: bool, tuned: bool = True
) -> dict[str, Any]:
    """Notifications/s through the emulator to 4 SQS long-pollers in another process."""
    import multiprocessing
    from datetime import datetime, timezone

    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    from aiosagemaker.local import EndpointSpec, LocalEndpoint
    from aiosagemaker.local._backends import MotoBackend
    from aiosagemaker.local._notify import build_message

    MotoBackend.tune_sqs = tuned

    spec = EndpointSpec(
        name="bench-notify",
        model="aiosagemaker.local.models:echo",
        success_topic="bench-notify-done",
        max_concurrent_invocations_per_instance=32,
    )
    async with LocalEndpoint(spec, notification_delivery=delivery) as local:
        env = local.env
        topic = local.endpoint("bench-notify").success_topic_arn
        assert topic is not None
        kwargs: dict[str, Any] = {
            "region_name": env["AWS_DEFAULT_REGION"],
            "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "config": AioConfig(max_pool_connections=64),
        }
        session = get_session()
        async with (
            session.create_client("sqs", endpoint_url=env["AWS_ENDPOINT_URL_SQS"], **kwargs) as sqs,
            session.create_client("sns", endpoint_url=env["AWS_ENDPOINT_URL_SNS"], **kwargs) as sns,
            session.create_client(
                "sagemaker-runtime", endpoint_url=local.runtime_url, **kwargs
            ) as runtime,
        ):
            url = (await sqs.create_queue(QueueName="bench-notify"))["QueueUrl"]
            attributes = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            await sns.subscribe(
                TopicArn=topic,
                Protocol="sqs",
                Endpoint=attributes["Attributes"]["QueueArn"],
                Attributes={"RawMessageDelivery": "true" if raw else "false"},
            )
            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe()
            consumer = context.Process(
                target=consumer_process, args=(env, url, raw, count, theirs), daemon=True
            )
            consumer.start()
            try:
                ready = await asyncio.to_thread(ours.poll, 120)
                assert ready and ours.recv() == "ready", "the consumer did not start"
                began = time.perf_counter()
                if end_to_end:
                    semaphore = asyncio.Semaphore(32)

                    async def invoke(index: int) -> None:
                        async with semaphore:
                            await runtime.invoke_endpoint_async(
                                EndpointName="bench-notify",
                                Body=b"%d" % index,
                                ContentType="text/plain",
                            )

                    await asyncio.gather(*(invoke(i) for i in range(count)))
                else:
                    aws, loop = local._aws, local._loop
                    assert aws is not None and loop is not None

                    async def publish_all() -> None:
                        now = datetime.now(timezone.utc)
                        semaphore = asyncio.Semaphore(32)

                        async def publish(index: int) -> None:
                            message = build_message(
                                region=aws.region,
                                endpoint_name="bench-notify",
                                inference_id=f"bench-{index}",
                                received=now,
                                finished=now,
                                input_location=None,
                                content_type="text/plain",
                                accept=None,
                                succeeded=True,
                                output_location=f"s3://bench/out/{index}.out",
                                output_content_type="text/plain",
                            )
                            async with semaphore:
                                await aws.publish(topic, message)

                        await asyncio.gather(*(publish(i) for i in range(count)))

                    published = asyncio.run_coroutine_threadsafe(publish_all(), loop)
                    await asyncio.wrap_future(published)
                published_at = time.perf_counter()
                finished = await asyncio.to_thread(ours.poll, 1800)
                received_at = time.perf_counter()
                assert finished, "the consumer did not receive everything in 30 minutes"
                seen: dict[str, int] = ours.recv()
            finally:
                consumer.join(60)
                if consumer.is_alive():
                    consumer.kill()
                    consumer.join(30)
    return {
        "delivery": delivery if tuned else "moto-untuned",
        "form": "raw" if raw else "enveloped",
        "path": "invocations" if end_to_end else "notifications",
        "notifications": count,
        "per_s": round(count / (received_at - began), 1),
        "published_s": round(published_at - began, 2),
        "received_s": round(received_at - began, 2),
        "delivered_once": len(seen) == count and all(v == 1 for v in seen.values()),
    }


async def _untuned_rows(count: int) -> list[dict[str, Any]]:
    return [
        await notifications(count, "sns", raw, end_to_end=False, tuned=False)
        for raw in (True, False)
    ]


def untuned_baseline(count: int) -> list[dict[str, Any]]:
    """moto as it ships (its SNS delivering to its SQS), measured in a fresh process.

    The emulator's moto tuning is process-wide and cannot be undone, hence the subprocess.
    """
    import subprocess

    completed = subprocess.run(
        [sys.executable, __file__, "--untuned-baseline", str(count)],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    rows: list[dict[str, Any]] = json.loads(completed.stdout)
    for row in rows:
        print(json.dumps(row), file=sys.stderr)
    return rows


async def notification_rows(counts: list[int], end_to_end_count: int) -> list[dict[str, Any]]:
    """Every delivery x form at every count, plus end-to-end invocations per delivery."""
    rows = untuned_baseline(counts[0])
    for count in counts:
        for delivery in ("sns", "emulator"):
            for raw in (True, False):
                row = await notifications(count, delivery, raw, end_to_end=False)
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
    for delivery in ("sns", "emulator"):
        row = await notifications(end_to_end_count, delivery, False, end_to_end=True)
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print and optionally write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--invocations", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--notifications", type=int, nargs="+", default=[1000, 10000], metavar="N")
    parser.add_argument("--end-to-end", type=int, default=1000, metavar="N")
    parser.add_argument("--output", type=Path, help="write the JSON result here")
    parser.add_argument("--untuned-baseline", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.untuned_baseline:
        print(json.dumps(asyncio.run(_untuned_rows(args.untuned_baseline))))
        return 0
    result = asyncio.run(run(args.invocations, args.concurrency))
    result["notifications"] = asyncio.run(notification_rows(args.notifications, args.end_to_end))
    text = json.dumps(result, indent=2)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
