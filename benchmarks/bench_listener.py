"""The notification listener alone: how fast it drains a queue holding N notifications.

Starts moto's server (SQS, with the emulator's fixes of moto's SQS) in its own process on
127.0.0.1, fills a fresh queue with N
distinct SageMaker success notifications (raw delivery), then, in this process, starts one
``SqsListener`` with ``receivers`` = 1, 2, 4, ... and times it from start until every message
is received, routed (held: nobody waits for them) and deleted. Reports messages per second,
the ReceiveMessage and DeleteMessageBatch calls it made, and this process's CPU per message.

Writes ``--output`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def message(index: int) -> str:
    """A raw-delivery success notification, as SageMaker sends it."""
    return json.dumps(
        {
            "awsRegion": "us-east-1",
            "eventTime": "2024-03-29T03:48:05.077Z",
            "receivedTime": "2024-03-29T03:48:04.279Z",
            "invocationStatus": "Completed",
            "requestParameters": {"contentType": "application/json", "endpointName": "bench"},
            "responseParameters": {
                "contentType": "application/json",
                "outputLocation": f"s3://bench/outputs/bench/{index:08d}.out",
            },
            "inferenceId": f"bench-{index}",
            "eventVersion": "1.0",
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
        }
    )


MOTO = """
import threading
from aiosagemaker.local._backends import MotoBackend

backend = MotoBackend()  # moto's server with the emulator's SQS fixes (as the benchmarks use)
backend.start()
print("READY", backend.url, flush=True)
threading.Event().wait()
"""


def start_moto() -> tuple[subprocess.Popen[str], str]:
    """moto's server (the emulator's tuned one) in its own process, and its URL."""
    server = subprocess.Popen([sys.executable, "-c", MOTO], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("READY "):
        server.kill()
        raise RuntimeError(f"moto's server did not start: {line!r}")
    return server, line.split()[1]


async def drain(url: str, n: int, receivers: int) -> dict[str, Any]:
    """Fill a queue with ``n`` notifications; time one listener draining it."""
    from aiobotocore.session import get_session

    from aiosagemaker import NotificationQueue

    session = get_session()
    async with session.create_client("sqs", endpoint_url=url) as sqs:
        name = f"drain-{receivers}-{os.getpid()}-{time.monotonic_ns()}"
        queue_url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
        for start in range(0, n, 10):
            entries = [
                {"Id": str(i), "MessageBody": message(i)} for i in range(start, min(n, start + 10))
            ]
            await sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        calls: dict[str, int] = {}

        def count(event_name: str, **_: Any) -> None:
            operation = event_name.rsplit(".", 1)[-1]
            calls[operation] = calls.get(operation, 0) + 1

        sqs.meta.events.register("before-call.sqs", count)
        options: dict[str, Any] = {"wait_time_seconds": 1, "max_held": n, "shutdown_timeout": 30}
        supported = "receivers" in inspect.signature(NotificationQueue).parameters
        if supported:  # older versions: one receive at a time, deletes on the receive path
            options["receivers"] = receivers
        source = NotificationQueue(queue_url, **options)
        listener = source.listener(sqs)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu0 = usage.ru_utime + usage.ru_stime
        started = time.monotonic()
        await listener.start()
        while source.stats.deleted < n:  # noqa: ASYNC110 - a benchmark polling its counter
            await asyncio.sleep(0.01)
        seconds = time.monotonic() - started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime - cpu0
        await listener.aclose()
        await sqs.delete_queue(QueueUrl=queue_url)
    stats = source.stats
    return {
        "receivers": receivers if supported else "one at a time (no receivers option)",
        "n": n,
        "seconds": round(seconds, 2),
        "messages_per_second": round(n / seconds, 1),
        "client_cpu_us_per_message": round(1e6 * cpu / n, 1),
        "received": stats.received,
        "held": stats.held,
        "deleted": stats.deleted,
        "duplicates": stats.duplicates,
        "calls": calls,
    }


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--receivers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--output", type=Path, default=HERE / "listener.json")
    args = parser.parse_args()
    server, url = start_moto()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    records = []
    try:
        for receivers in args.receivers:
            record = asyncio.run(drain(url, args.n, receivers))
            print(json.dumps(record), flush=True)
            records.append(record)
    finally:
        server.terminate()
        server.wait(30)
    args.output.write_text(
        json.dumps(
            {
                "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "cpu_count": os.cpu_count(),
                "load_average_at_start": os.getloadavg(),
                "runs": records,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
