"""Benchmark the local emulator: startup time and sustained InvokeEndpointAsync throughput.

Run: ``python benchmarks/bench_emulator.py --output benchmarks/emulator.json``

* startup: from importing ``aiosagemaker.local`` to the first accepted (202) invocation;
* throughput: ``--invocations`` calls of the no-op ``echo`` model through an aiobotocore
  client over loopback with ``--concurrency`` calls in flight; reports accepted/s (202s) and
  completed/s (result objects written to moto's S3).
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


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print and optionally write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--invocations", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--output", type=Path, help="write the JSON result here")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.invocations, args.concurrency))
    text = json.dumps(result, indent=2)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
