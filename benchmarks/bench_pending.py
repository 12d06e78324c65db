"""Benchmark: 100,000 results pending at once on one predictor's waiting engine.

What it measures is the waiting side alone (submitting 100,000 inferences through the
emulator would measure the emulator): the client process registers N responses for result
locations laid out as a predictor with ``S3OutputPathExtension`` makes them (a sub-prefix per
1,000), all through ``as_completed``. Then, each in its own process, on 127.0.0.1:

1. **waiting**: nothing is written for ``--idle`` seconds; the S3 requests per second the
   client makes are read from the in-memory S3 server's counters (the goal: far below S3's
   per-prefix limits, within the predictor's budget);
2. **arriving**: a writer process writes every result (and a failure file for every 500th) at
   ``--rate`` objects per second, in batches through the S3 server's bulk endpoint (it stands
   in for the service, so it does not compete with the client's measured work over S3); the
   client records when each outcome is in its hands.

Reported: errors (wrong, lost or duplicated outcomes), S3 requests per second while waiting,
S3 reads per result, detection latency (written, per the server's clock, to in hand), the
client's peak RSS, CPU (and the share of it garbage collection took, timed through
``gc.callbacks``) and event-loop lag. Writes ``--output`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench_clients import http_json
from clients import proc_status

HERE = Path(__file__).resolve().parent
BUCKET = "bench"
PREFIX_OUT = "outputs/pending/aiosagemaker-bench0000"
PREFIX_FAIL = "failures/pending/aiosagemaker-bench0000"
FAIL_EVERY = 500


def keys(i: int) -> tuple[str, str]:
    """The output and failure keys of result ``i`` (a sub-prefix per 1,000)."""
    name = f"{i:08d}-{i * 2654435761 % 2**32:08x}"
    return f"{PREFIX_OUT}/{i // 1000:x}/{name}.out", f"{PREFIX_FAIL}/{i // 1000:x}/{name}-error.out"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# -- the client -------------------------------------------------------------------------------


class GcTimer:
    """The time garbage collection takes, from ``gc.callbacks`` start/stop pairs."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started
            self.collections[info["generation"]] += 1


async def client(args: argparse.Namespace) -> None:
    import aiosagemaker

    gc_timer = GcTimer()
    gc.callbacks.append(gc_timer)
    lags: list[float] = []
    stop = asyncio.Event()

    async def lag_monitor() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.02)
            lags.append(time.perf_counter() - before - 0.02)

    waiter = aiosagemaker.WaiterConfig(max_attempts=None, delay=args.delay, timeout=args.timeout)
    async with aiosagemaker.AsyncPredictor(
        "pending", default_bucket=BUCKET, waiter_config=waiter
    ) as predictor:
        responses = []
        for i in range(args.n):
            out, fail = keys(i)
            responses.append(
                aiosagemaker.AsyncInferenceResponse(
                    predictor, f"s3://{BUCKET}/{out}", f"s3://{BUCKET}/{fail}", f"id-{i}"
                )
            )
        monitor = asyncio.create_task(lag_monitor())
        cpu0 = time.process_time()
        gc0 = gc_timer.seconds
        collections0 = list(gc_timer.collections)
        done: dict[str, float] = {}
        errors: list[str] = []
        first = True
        async for response in aiosagemaker.as_completed(responses):
            if first:
                first = False
            error = response.exception()
            index = int(response.output_path.rsplit("/", 1)[1][:8])
            if index % FAIL_EVERY == 0:
                if not isinstance(error, aiosagemaker.AsyncInferenceModelError):
                    errors.append(f"{index}: expected a model failure, got {error!r}")
            elif error is not None:
                errors.append(f"{index}: {error!r}"[:200])
            elif response.result() != b"result %d" % index:
                errors.append(f"{index}: wrong result {response.result()!r}"[:200])
            if response.output_path in done:
                errors.append(f"{index}: twice")
            done[response.output_path] = time.time()
            if len(done) == 1:
                sys.stdout.write(json.dumps({"phase": "first"}) + "\n")
                sys.stdout.flush()
        cpu = time.process_time() - cpu0
        gc_seconds = gc_timer.seconds - gc0
        collections = [a - b for a, b in zip(gc_timer.collections, collections0, strict=True)]
        stop.set()
        await monitor
        stats = predictor.engine_stats
        status = proc_status()
    Path(args.times).write_text(json.dumps(done))  # noqa: ASYNC240 - measured already
    sys.stdout.write(
        json.dumps(
            {
                "phase": "done",
                "completed": len(done),
                "errors": len(errors),
                "error_samples": errors[:5],
                "cpu_seconds": cpu,
                "gc_seconds": gc_seconds,
                "gc_share_of_cpu": gc_seconds / cpu if cpu else None,
                "gc_collections": collections,
                "peak_rss_kb": status["VmHWM"],
                "threads": status["Threads"],
                "loop_lag_p50": percentile(lags, 0.5),
                "loop_lag_p99": percentile(lags, 0.99),
                "loop_lag_max": max(lags, default=None),
                "engine": {k: getattr(stats, k) for k in vars(stats)},
            }
        )
        + "\n"
    )


# -- the writer -------------------------------------------------------------------------------


def writer(args: argparse.Namespace) -> None:
    """Write every result at ``--rate`` per second, in batches every 10 ms.

    The writer stands in for the service writing results: it posts them to the in-memory S3
    server's bulk endpoint, so its own CPU does not compete with the client's measured work.
    """
    url = os.environ["AWS_ENDPOINT_URL_S3"] + "/_bench/put_many"
    started = time.monotonic()
    written = 0
    while written < args.n:
        target = min(args.n, int((time.monotonic() - started) * args.rate) + 1)
        objects = []
        for i in range(written, target):
            out, fail = keys(i)
            if i % FAIL_EVERY == 0:
                objects.append([fail, f"model failed {i}", "text/plain"])
            else:
                objects.append([out, f"result {i}", "text/plain"])
        written = target
        body = json.dumps({"bucket": BUCKET, "objects": objects}).encode()
        request = urllib.request.Request(url, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
        time.sleep(0.01)


# -- the orchestrator -------------------------------------------------------------------------


def s3_reads(stats: dict[str, Any]) -> int:
    counts = stats["counts"]
    return sum(counts.get(op, 0) for op in ("GetObject", "HeadObject", "ListObjectsV2"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--role", choices=["orchestrate", "client", "writer"], default="orchestrate"
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of pure waiting")
    parser.add_argument("--rate", type=float, default=300.0, help="results written per second")
    parser.add_argument("--times", default="")
    parser.add_argument("--output", type=Path, default=HERE / "pending.json")
    args = parser.parse_args()
    if args.role == "client":
        asyncio.run(client(args))
        return
    if args.role == "writer":
        writer(args)
        return

    server = subprocess.Popen(
        [sys.executable, str(HERE / "s3server.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[1]
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL_S3": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        urllib.request.urlopen(urllib.request.Request(f"{url}/{BUCKET}", method="PUT"), timeout=30)
        times = args.output.with_suffix(".times.json")
        common = ["--n", str(args.n), "--delay", str(args.delay), "--timeout", str(args.timeout)]
        client_process = subprocess.Popen(
            [sys.executable, __file__, "--role", "client", *common, "--times", str(times)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        # waiting: let registration settle, then count what S3 sees while nothing is written
        deadline = time.monotonic() + 600
        while s3_reads(http_json(f"{url}/_bench/stats")) == 0:
            if time.monotonic() > deadline or client_process.poll() is not None:
                raise RuntimeError("the client never started checking")
            time.sleep(0.5)
        time.sleep(5)
        before, t0 = s3_reads(http_json(f"{url}/_bench/stats")), time.monotonic()
        time.sleep(args.idle)
        idle_reads = s3_reads(http_json(f"{url}/_bench/stats")) - before
        idle_rate = idle_reads / (time.monotonic() - t0)
        print(f"waiting: {idle_rate:.1f} S3 requests/s with {args.n:,} pending", flush=True)
        http_json(f"{url}/_bench/reset", "POST")  # count the arriving phase on its own
        started = time.monotonic()
        writer_process = subprocess.Popen(
            [sys.executable, __file__, "--role", "writer", "--n", str(args.n),
             "--rate", str(args.rate)],
            env=env,
        )  # fmt: skip
        assert client_process.stdout is not None
        record: dict[str, Any] = {}
        for line in client_process.stdout:
            phase = json.loads(line)
            if phase["phase"] == "done":
                record = phase
        client_process.wait(timeout=600)
        writer_process.wait(timeout=600)
        wall = time.monotonic() - started
        stats = http_json(f"{url}/_bench/stats")
        written: dict[str, float] = {}
        for prefix in (PREFIX_OUT, PREFIX_FAIL):
            written.update(http_json(f"{url}/_bench/puts?bucket={BUCKET}&prefix={prefix}"))
        done = json.loads(times.read_text())
        times.unlink()
        latencies = []
        for path, at in done.items():
            key = path.split("/", 3)[3]
            if key not in written:  # a failure: its failure file was written
                index = int(key.rsplit("/", 1)[1][:8])
                key = keys(index)[1]
            latencies.append(at - written[key])
        result = {
            "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "n": args.n,
            "delay": args.delay,
            "write_rate_per_second": args.rate,
            "s3_requests_per_second_while_waiting": idle_rate,
            "s3_reads_per_result_arriving": s3_reads(stats) / max(1, args.n),
            "s3_counts_arriving": stats["counts"],
            "arriving_wall_seconds": wall,
            "detection_p50": percentile(latencies, 0.5),
            "detection_p99": percentile(latencies, 0.99),
            **record,
        }
        args.output.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps({k: v for k, v in result.items() if k != "engine"}), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
