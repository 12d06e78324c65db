"""One consumer process for the two-process notification test.

Usage: ``notification_consumer.py QUEUE_NAME COUNT TOPIC_ARN...`` with the emulator's
``AWS_ENDPOINT_URL_*`` variables set. Creates its own subscribed queue, submits COUNT
inferences to endpoint ``notify``, awaits them all through notifications and prints a JSON
report (expected and actual results, listener counters) on stdout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import uuid

from aiosagemaker import (
    AsyncPredictor,
    JSONDeserializer,
    JSONSerializer,
    NotificationQueue,
    WaiterConfig,
    ensure_notification_queue,
)

BUCKET = "aiosagemaker-tests"


async def main(queue_name: str, count: int, topic_arns: list[str]) -> None:
    setup = await ensure_notification_queue(queue_name, topic_arns)
    queue = NotificationQueue(setup.queue_url, wait_time_seconds=1)
    tag = uuid.uuid4().hex[:8]
    expected = [f"{tag}-{index}" for index in range(count)]
    async with AsyncPredictor(
        "notify",
        default_bucket=BUCKET,
        serializer=JSONSerializer(),
        deserializer=JSONDeserializer(),
        notifications=queue,
    ) as predictor:
        responses = [await predictor.predict_async({"output": value}) for value in expected]
        wait = WaiterConfig(max_attempts=None, timeout=30)
        results = await asyncio.gather(*(r.get_result(wait) for r in responses))
    report = {"expected": expected, "results": results, "stats": dataclasses.asdict(queue.stats)}
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))
