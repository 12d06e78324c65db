"""One benchmark client: N concurrent requests (submit + wait for the result), one variant.

Runs in its own process so that CPU, RSS and threads are the client's alone. Variants:

- ``floor``: hand-written aiobotocore, only PutObject, InvokeEndpointAsync and a GET poll of
  the output location.
- ``polling``: ``aiosagemaker.AsyncPredictor`` polling S3, default settings.
- ``polling-get``: the same with the engine's per-object GET detection forced (no listing).
- ``notifications``: ``aiosagemaker.AsyncPredictor(notifications=NotificationQueue(...))``.
- ``sdk``: the official SageMaker SDK v2 ``AsyncPredictor``, one thread per request. Imports
  only the SDK (this file runs in the SDK's own environment for that variant).

Every variant first makes one warm-up request (clients created, botocore's loader cache warm),
then measures. It writes a JSON line ``{"phase": "done", ...}`` on stdout at the last result
and, for the SDK, ``{"phase": "after", ...}`` once its leftover waiter threads have finished.
Per-request result times go to ``--times FILE`` as ``[[output_location, epoch_seconds], ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

PAYLOAD = b'{"inputs": [1, 2, 3]}'
CONTENT_TYPE = "application/json"


def cpu_seconds() -> float:
    """User + system CPU of this process (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_status() -> dict[str, int]:
    """Peak RSS (kB) and thread count from ``/proc/self/status``."""
    values: dict[str, int] = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "Threads"):
                values[key] = int(rest.split()[0])
    return values


def emit(record: dict[str, Any]) -> None:
    """One JSON line on stdout for the orchestrator."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def warmed_up() -> None:
    """Tell the orchestrator the warm-up is done; wait for it to reset its counters."""
    emit({"phase": "warm"})
    if not sys.stdin.readline().strip():
        raise SystemExit("the orchestrator went away")


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1, nearest rank) or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def done_record(
    wall: float,
    cpu: float,
    threads: int,
    completed: int,
    errors: list[str],
    lags: list[float] | None,
) -> dict[str, Any]:
    """The ``done`` line of a client run: its time, CPU, peak RSS and threads (now or at their
    peak), outcomes, and event-loop lag (None for thread clients)."""
    status = proc_status()
    return {
        "phase": "done",
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_kb": status["VmHWM"],
        "threads": max(threads, status["Threads"]),
        "completed": completed,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "loop_lag_p50": None if lags is None else percentile(lags, 0.5),
        "loop_lag_p99": None if lags is None else percentile(lags, 0.99),
        "loop_lag_max": None if lags is None else max(lags, default=None),
    }


# -- asyncio variants ------------------------------------------------------------------------


class LagMonitor:
    """Measures event-loop lag: how late a periodic ``sleep(interval)`` wakes up."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.lags: list[float] = []

    async def run(self) -> None:
        """Sample until cancelled."""
        import asyncio

        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, loop.time() - start - self.interval))


async def run_async(args: argparse.Namespace) -> None:
    """The floor, polling and notifications variants on one asyncio event loop."""
    import asyncio

    times: list[tuple[str, float]] = []
    errors: list[str] = []
    engine: dict[str, Any] = {}
    async with make_async_client(args, engine) as one:
        await one()  # warm-up: clients open, first request path exercised
        warmed_up()
        stats0 = engine_counts(engine)
        monitor = LagMonitor()
        lag_task = asyncio.create_task(monitor.run())
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        peak_threads = threading.active_count()

        async def task() -> None:
            nonlocal peak_threads
            try:
                location = await one()
                times.append((location, time.time()))
            except Exception as error:  # recorded, the run goes on
                errors.append(f"{type(error).__name__}: {error}"[:300])
            peak_threads = max(peak_threads, threading.active_count())

        await asyncio.gather(*(task() for _ in range(args.n)))
        wall, cpu = time.monotonic() - wall0, cpu_seconds() - cpu0
        lag_task.cancel()
        record = done_record(wall, cpu, peak_threads, len(times), errors, monitor.lags)
        if stats0 is not None:  # what the waiting engine did while measured
            stats1 = engine_counts(engine)
            assert stats1 is not None
            record["engine"] = {k: v - stats0.get(k, 0) for k, v in stats1.items()}
        Path(args.times).write_text(json.dumps(times))  # noqa: ASYNC240 - measured already
        emit(record)


def engine_counts(engine: dict[str, Any]) -> dict[str, int] | None:
    """The waiting engine's counters now (None for the floor: it has no engine)."""
    predictor = engine.get("predictor")
    stats = None if predictor is None else predictor.engine_stats
    return None if stats is None else {k: v for k, v in vars(stats).items() if isinstance(v, int)}


def make_async_client(args: argparse.Namespace, engine: dict[str, Any]) -> Any:
    """An async context manager yielding ``one()``: submit, wait, return the output location.

    The library variants put their predictor in ``engine["predictor"]`` (for its counters).
    """
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def floor() -> Any:
        import asyncio
        import uuid

        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        session = get_session()
        config = AioConfig(max_pool_connections=args.pool)
        limit = asyncio.Semaphore(args.pool)
        async with (
            session.create_client("s3", config=config) as s3,
            session.create_client("sagemaker-runtime", config=config) as runtime,
        ):

            async def one() -> str:
                key = f"inputs/{uuid.uuid4()}"
                async with limit:
                    await s3.put_object(
                        Bucket=args.bucket, Key=key, Body=PAYLOAD, ContentType=CONTENT_TYPE
                    )
                async with limit:
                    response = await runtime.invoke_endpoint_async(
                        EndpointName=args.endpoint,
                        InputLocation=f"s3://{args.bucket}/{key}",
                        ContentType=CONTENT_TYPE,
                    )
                location = response["OutputLocation"]
                bucket, _, out_key = location[len("s3://") :].partition("/")
                for attempt in range(args.max_attempts):
                    try:
                        async with limit:
                            result = await s3.get_object(Bucket=bucket, Key=out_key)
                            async with result["Body"] as body:
                                await body.read()
                        return str(location)
                    except s3.exceptions.NoSuchKey:
                        if attempt + 1 < args.max_attempts:
                            await asyncio.sleep(args.delay)
                raise TimeoutError(f"no result at {location}")

            yield one

    @asynccontextmanager
    async def library() -> Any:
        import aiosagemaker

        waiter = aiosagemaker.WaiterConfig(max_attempts=args.max_attempts, delay=args.delay)
        kwargs: dict[str, Any] = {}
        if args.variant == "polling-get":
            kwargs["detection"] = "get"
        if args.variant == "notifications":
            setup = await aiosagemaker.ensure_notification_queue(f"bench-{os.getpid()}", args.topic)
            kwargs["notifications"] = aiosagemaker.NotificationQueue(
                setup.queue_url, wait_time_seconds=1
            )
        async with aiosagemaker.AsyncPredictor(
            args.endpoint, default_bucket=args.bucket, waiter_config=waiter, **kwargs
        ) as predictor:
            engine["predictor"] = predictor

            async def one() -> str:
                response = await predictor.predict_async(PAYLOAD)
                await response.get_result(waiter)
                return str(response.output_path)

            yield one

    return floor() if args.variant == "floor" else library()


# -- the official SDK, a thread per request --------------------------------------------------


def run_sdk(args: argparse.Namespace) -> None:
    """SDK v2 AsyncPredictor with one thread per request, as its users do it."""
    import boto3  # type: ignore[import-untyped,unused-ignore]
    from sagemaker.async_inference import WaiterConfig  # type: ignore[import-not-found]
    from sagemaker.predictor import Predictor  # type: ignore[import-not-found]
    from sagemaker.predictor_async import AsyncPredictor  # type: ignore[import-not-found]
    from sagemaker.session import Session  # type: ignore[import-not-found]

    session = Session(boto_session=boto3.Session(), default_bucket=args.bucket)
    predictor = AsyncPredictor(Predictor(args.endpoint, sagemaker_session=session), name="bench")
    waiter = WaiterConfig(max_attempts=args.max_attempts, delay=args.delay)
    times: list[tuple[str, float]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            response = predictor.predict_async(data=PAYLOAD)
            response.get_result(waiter)
            with lock:
                times.append((response.output_path, time.time()))
        except Exception as error:  # recorded, the run goes on
            with lock:
                errors.append(f"{type(error).__name__}: {error}"[:300])

    one()  # warm-up: botocore's loader cache, clients, default bucket
    if errors:
        raise SystemExit(f"warm-up failed: {errors[0]}")
    times.clear()
    warmed_up()
    warm_threads = set(threading.enumerate())
    peak_threads = 0
    sampling = threading.Event()

    def sample() -> None:
        nonlocal peak_threads
        ticks = 0
        while not sampling.wait(0.1):
            peak_threads = max(peak_threads, threading.active_count())
            ticks += 1
            if ticks % 50 == 0:  # progress every 5 s, kept by the orchestrator on a timeout
                emit(
                    {
                        "phase": "progress",
                        "seconds": time.monotonic() - wall0,
                        "completed": len(times),
                        "errors": len(errors),
                        "cpu_seconds": cpu_seconds() - cpu0,
                        "peak_rss_kb": proc_status()["VmHWM"],
                        "threads": peak_threads,
                    }
                )

    cpu0, wall0 = cpu_seconds(), time.monotonic()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    workers: list[threading.Thread] = []
    start_failed = ""
    for _ in range(args.n):
        worker = threading.Thread(target=one)
        try:
            worker.start()
        except RuntimeError as error:  # "can't start new thread"
            start_failed = f"started {len(workers)} threads, then: {error}"
            break
        workers.append(worker)
    for worker in workers:
        worker.join()
    wall, cpu = time.monotonic() - wall0, cpu_seconds() - cpu0
    record = done_record(wall, cpu, peak_threads, len(times), errors, None)
    with open(args.times, "w") as out:
        json.dump(times, out)
    record["errors"] += args.n - len(workers)
    record["error_samples"] += [start_failed] if start_failed else []
    record["leftover_threads"] = len(set(threading.enumerate()) - warm_threads) - 1
    emit(record)
    # The failure-path waiter threads keep polling until max_attempts: wait for them.
    for thread in set(threading.enumerate()) - warm_threads:
        if thread is not sampler and thread is not threading.current_thread():
            thread.join()
    sampling.set()
    emit(
        {
            "phase": "after",
            "wall_seconds": time.monotonic() - wall0,
            "cpu_seconds": cpu_seconds() - cpu0,
            "peak_rss_kb": proc_status()["VmHWM"],
            "threads": peak_threads,
        }
    )


def main() -> None:
    """Command line entry point (used by ``bench_clients.py``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--variant", choices=["floor", "polling", "polling-get", "notifications", "sdk"]
    )
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--max-attempts", type=int, default=60)
    parser.add_argument("--pool", type=int, default=64, help="floor: connections and concurrency")
    parser.add_argument("--topic", action="append", default=[], help="SNS topic ARNs")
    parser.add_argument("--times", required=True, help="file for per-request result times")
    args = parser.parse_args()
    if args.variant == "sdk":
        run_sdk(args)
    else:
        import asyncio

        asyncio.run(run_async(args))


if __name__ == "__main__":
    main()
