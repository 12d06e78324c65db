"""Client CPU per result, stage by stage, and per AWS call on the botocore path.

Starts the same S3 server and emulator as ``bench_clients.py`` (each in its own process, on
127.0.0.1). Then, each in a fresh process:

- **stages**: ``AsyncPredictor`` (JSON serializer and deserializer, payloads uploaded, default
  waiting) submits N requests at once and waits for every result, like the ``polling`` (or
  ``notifications``) variant of ``clients.py``. The process times its main thread's CPU
  (``time.thread_time``) per stage: the library's stage entry points are wrapped in this
  process only (the library itself has no hook and pays nothing), a coroutine's CPU is
  counted step by step (only while it runs, never while it is suspended), nested stages are
  subtracted from the enclosing one, and ``gc.callbacks`` time garbage collection apart.
  What no stage claims is the event loop itself: selecting, aiohttp's protocol callbacks
  (HTTP parsing) and task switching.
- **calls**: one call at a time on plain aiobotocore clients (the botocore path, no library
  code), CPU per PutObject, GetObject (body read), InvokeEndpointAsync, and per
  ListObjectsV2 page of 1,000 keys (botocore's parser, and the library's lean reader); then
  the same calls on the lean transport (``transport="lean"``: aiohttp, botocore's SigV4
  signer, one regular-expression pass per LIST page). ``--calls-only`` stops there.

Writes ``--output`` (JSON) and, with ``--docs``, the tables between the ``stages`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import inspect
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Generator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_clients import (  # noqa: E402 - after the path set-up
    ACCOUNT,
    BUCKET,
    ENDPOINT,
    NOTIFY_ENDPOINT,
    REGION,
    Servers,
)

STAGES = [
    "serialize",
    "upload",
    "invoke",
    "submit glue",
    "detect",
    "fetch",
    "decode",
    "engine",
    "wait glue",
    "gc",
    "event loop",
]
"""Stages in table order; "event loop" is the main thread's CPU no wrapped function claims."""
DATA = {"inputs": [1, 2, 3]}


# -- the meter (child process only) ----------------------------------------------------------


class Meter:
    """Exclusive main-thread CPU per stage: a stack of running stages, charged on each switch."""

    def __init__(self) -> None:
        self.main = threading.get_ident()
        self.cpu: dict[str, float] = defaultdict(float)
        self.stack = ["event loop"]
        self.mark = time.thread_time()
        self.switches = 0

    def reset(self) -> None:
        self.cpu.clear()
        self.switches = 0
        self.mark = time.thread_time()

    def push(self, stage: str) -> None:
        now = time.thread_time()
        self.cpu[self.stack[-1]] += now - self.mark
        self.stack.append(stage)
        self.mark = now
        self.switches += 1

    def pop(self) -> None:
        now = time.thread_time()
        self.cpu[self.stack.pop()] += now - self.mark
        self.mark = now

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """A ``gc.callbacks`` entry: collections are a stage of their own."""
        if threading.get_ident() != self.main:
            return
        if phase == "start":
            self.push("gc")
        elif self.stack[-1] == "gc":
            self.pop()


METER = Meter()


class _Steps:
    """Awaits a coroutine, charging only the CPU of its steps to ``stage``."""

    __slots__ = ("coroutine", "stage")

    def __init__(self, stage: str, coroutine: Any) -> None:
        self.stage = stage
        self.coroutine = coroutine

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, stage = self.coroutine, self.stage
        value: Any = None
        error: BaseException | None = None
        while True:
            METER.push(stage)
            try:
                yielded = coroutine.send(value) if error is None else coroutine.throw(error)
            except StopIteration as stop:
                METER.pop()
                return stop.value
            except BaseException:
                METER.pop()
                raise
            METER.pop()
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as thrown:  # delivered into the coroutine at its next step
                value, error = None, thrown


def timed(stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (sync or async) with its CPU charged to ``stage``."""
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def coroutine_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await _Steps(stage, function(*args, **kwargs))

        return coroutine_wrapper

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        METER.push(stage)
        try:
            return function(*args, **kwargs)
        finally:
            METER.pop()

    return wrapper


def instrument() -> list[str]:
    """Wrap the library's stage entry points (this process only); names not found."""
    from aiosagemaker import (
        _predictor,
        _response,
        _s3_transport,
        _submission,
        deserializers,
        serializers,
    )
    from aiosagemaker._notifications import _listener
    from aiosagemaker._waiting import _collect, _engine, _pending

    targets = [
        (serializers.JSONSerializer, "serialize", "serialize"),
        (deserializers.JSONDeserializer, "deserialize", "decode"),
        (_s3_transport.S3Transport, "put", "upload"),
        (_submission.Invoker, "invoke", "invoke"),
        (_predictor.AsyncPredictor, "predict_async", "submit glue"),
        (_engine.WaitingEngine, "_check", "detect"),
        (_listener.SqsListener, "_receive", "detect"),
        (_listener.SqsListener, "_handle", "detect"),
        (_listener.SqsListener, "_delete", "detect"),
        (_collect.ResultReader, "collect", "fetch"),
        (_engine.WaitingEngine, "_run", "engine"),
        (_collect.ResultReader, "wait", "engine"),
        (_engine.WaitingEngine, "found", "engine"),
        (_engine.WaitingEngine, "satisfy", "engine"),
        (_pending.Registry, "_resolve", "engine"),
        (_response.AsyncInferenceResponse, "get_result", "wait glue"),
    ]
    missing = []
    for owner, name, stage in targets:
        function = owner.__dict__.get(name)
        if function is None:
            missing.append(f"{owner.__name__}.{name}")
            continue
        setattr(owner, name, timed(stage, function))
    return missing


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def switch_cost() -> float:
    """CPU seconds of one push/pop pair (the meter's own cost, charged to the stages)."""
    meter = Meter()
    start = time.thread_time()
    for _ in range(100_000):
        meter.push("x")
        meter.pop()
    return (time.thread_time() - start) / 100_000


async def run_stages(args: argparse.Namespace) -> dict[str, Any]:
    """Submit N, wait for all, with the meter on; the child's record."""
    missing = instrument()
    import aiosagemaker

    waiter = aiosagemaker.WaiterConfig(max_attempts=args.max_attempts, delay=args.delay)
    kwargs: dict[str, Any] = {}
    if args.variant == "notifications":
        topics = [f"arn:aws:sns:{REGION}:{ACCOUNT}:bench-{t}" for t in ("ok", "err")]
        setup = await aiosagemaker.ensure_notification_queue(f"stages-{os.getpid()}", topics)
        kwargs["notifications"] = aiosagemaker.NotificationQueue(
            setup.queue_url, wait_time_seconds=1
        )
    predictor = aiosagemaker.AsyncPredictor(
        args.endpoint,
        default_bucket=BUCKET,
        serializer=aiosagemaker.JSONSerializer(),
        deserializer=aiosagemaker.JSONDeserializer(),
        waiter_config=waiter,
        # "polling": every payload uploaded, so the stages include the upload; "defaults":
        # the library's defaults (inline="auto": small payloads travel in the invoke)
        inline="auto" if args.variant == "defaults" else False,
        **kwargs,
    )
    errors: list[str] = []

    async def one() -> None:
        try:
            response = await predictor.predict_async(DATA)
            if await response.get_result(waiter) != DATA:
                errors.append("wrong result")
        except Exception as error:  # recorded, the run goes on
            errors.append(f"{type(error).__name__}: {error}"[:200])

    async with predictor:
        await one()  # warm-up: clients open, caches warm
        sys.stdout.write(json.dumps({"phase": "warm"}) + "\n")
        sys.stdout.flush()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        gc.collect()
        gc.callbacks.append(METER.on_gc)
        METER.reset()
        cpu0, main0, wall0 = cpu_seconds(), time.thread_time(), time.monotonic()
        await asyncio.gather(*(one() for _ in range(args.n)))
        METER.pop()  # charge the open "event loop" span
        METER.stack.append("event loop")
        cpu, main, wall = cpu_seconds() - cpu0, time.thread_time() - main0, time.monotonic() - wall0
        gc.callbacks.remove(METER.on_gc)
    per = 1e6 / args.n
    stages = {stage: round(METER.cpu.get(stage, 0.0) * per, 1) for stage in STAGES}
    cost = switch_cost()
    return {
        "variant": args.variant,
        "n": args.n,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
        "wall_seconds": round(wall, 2),
        "cpu_us_per_result": round(cpu * per, 1),
        "main_thread_us_per_result": round(main * per, 1),
        "other_threads_us_per_result": round((cpu - main) * per, 1),
        "stages_us_per_result": stages,
        "meter_switches_per_result": round(METER.switches / args.n, 1),
        "meter_overhead_us_per_result": round(METER.switches * cost * per, 1),
        "not_instrumented": missing,
    }


# -- per call, on the botocore path (child process) -------------------------------------------


async def run_calls(args: argparse.Namespace) -> dict[str, Any]:
    """One call at a time on plain aiobotocore clients: main-thread CPU per call."""
    from aiobotocore.session import get_session

    from aiosagemaker._clients import lean_listings
    from aiosagemaker._lean import open_lean_clients

    session = get_session()
    body = json.dumps(DATA).encode()
    prefix = f"calls/{os.getpid()}/"
    results: dict[str, Any] = {}

    async def per_call(name: str, count: int, call: Callable[[int], Any]) -> None:
        await call(0)  # warm: the operation's model and handlers are loaded
        start = time.thread_time()
        for index in range(count):
            await call(index)
        results[name] = round(1e6 * (time.thread_time() - start) / count, 1)

    async with (
        session.create_client("s3") as s3,
        session.create_client("s3") as lean,
        session.create_client("sagemaker-runtime") as runtime,
        AsyncExitStack() as stack,
    ):
        lean_listings(lean)
        lean_s3, lean_runtime = await open_lean_clients(
            s3,
            runtime,
            stack,
            s3_connections=10,
            runtime_connections=10,
            expected_bucket_owner=None,
        )

        async def put(index: int, client: Any = s3) -> None:
            await client.put_object(
                Bucket=BUCKET, Key=f"{prefix}{index:06d}", Body=body, ContentType="application/json"
            )

        async def get(index: int) -> None:
            response = await s3.get_object(Bucket=BUCKET, Key=f"{prefix}{index % 1000:06d}")
            async with response["Body"] as stream:
                await stream.read()

        async def lean_get(index: int) -> None:
            response = await lean_s3.get_object(Bucket=BUCKET, Key=f"{prefix}{index % 1000:06d}")
            await response["Body"].read()
            await response["Body"].aclose()

        async def invoke(index: int, client: Any = runtime) -> None:
            await client.invoke_endpoint_async(
                EndpointName=ENDPOINT,
                InputLocation=f"s3://{BUCKET}/{prefix}{index % 1000:06d}",
                ContentType="application/json",
            )

        def lister(client: Any) -> Callable[[int], Any]:
            async def page(index: int) -> None:
                await client.list_objects_v2(Bucket=BUCKET, Prefix=prefix, MaxKeys=1000)

            return page

        await per_call("PutObject", args.calls, put)
        if args.calls < 1000:
            for index in range(args.calls, 1000):
                await put(index)
        await per_call("GetObject", args.calls, get)
        await per_call("InvokeEndpointAsync", args.calls, invoke)
        await per_call("ListObjectsV2 page (1,000 keys), botocore", args.pages, lister(s3))
        await per_call("ListObjectsV2 page (1,000 keys), lean reader", args.pages, lister(lean))
        await per_call("PutObject, lean transport", args.calls, lambda i: put(i, lean_s3))
        await per_call("GetObject, lean transport", args.calls, lean_get)
        await per_call(
            "InvokeEndpointAsync, lean transport", args.calls, lambda i: invoke(i, lean_runtime)
        )
        await per_call(
            "ListObjectsV2 page (1,000 keys), lean transport (regex)", args.pages, lister(lean_s3)
        )
    return {"us_per_call": results, "calls": args.calls, "pages": args.pages}


# -- the orchestrator ---------------------------------------------------------------------------


def run_child(servers: Servers, argv: list[str], timeout: float) -> dict[str, Any]:
    """Run this script as a child with ``argv``; its last JSON line (plus the S3 counts)."""
    from bench_clients import http_json

    http_json(f"{servers.s3_url}/_bench/reset", "POST")
    command = [sys.executable, str(Path(__file__).resolve()), "--child", *argv]
    env = {**os.environ, **servers.env}
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdin is not None and child.stdout is not None
    record: dict[str, Any] = {"failure": "no result line"}
    timer = threading.Timer(timeout, child.kill)
    timer.start()
    try:
        for line in child.stdout:
            if not line.startswith("{"):
                continue
            message = json.loads(line)
            if message.get("phase") == "warm":
                http_json(f"{servers.s3_url}/_bench/reset", "POST")
                child.stdin.write("go\n")
                child.stdin.flush()
                continue
            record = message
        child.wait()
    finally:
        timer.cancel()
    if child.returncode:
        record.setdefault("failure", f"exit code {child.returncode}")
    requests = servers.s3_counts()["client"]
    record["s3_requests"] = requests
    return record


def environment() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "packages": {n: version(n) for n in ["aiosagemaker", "aiobotocore", "botocore", "aiohttp"]},
    }


def markdown(results: dict[str, Any]) -> str:
    """The stage table (a column per run) and the per-call table."""
    runs = [r for r in results["runs"] if "stages_us_per_result" in r]
    lines = [
        "| µs of client CPU per result | "
        + " | ".join(f"{r['variant']}, N = {r['n']:,}" for r in runs)
        + " |",
        "|---|" + "---:|" * len(runs),
    ]
    for stage in STAGES:
        cells = []
        for r in runs:
            value = r["stages_us_per_result"][stage]
            share = value / r["cpu_us_per_result"] if r["cpu_us_per_result"] else 0.0
            cells.append(f"{value:,.0f} ({share:.0%})")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    for key, label in (
        ("other_threads_us_per_result", "other threads"),
        ("cpu_us_per_result", "**total (process CPU)**"),
        ("meter_overhead_us_per_result", "of which the meter itself (estimate)"),
    ):
        lines.append(f"| {label} | " + " | ".join(f"{r[key]:,.0f}" for r in runs) + " |")
    lines.append(
        "| wall s / errors | "
        + " | ".join(f"{r['wall_seconds']:.1f} / {r['errors']}" for r in runs)
        + " |"
    )
    calls = results.get("calls", {}).get("us_per_call", {})
    if calls:
        lines += ["", "| call (one at a time) | µs of client CPU |", "|---|---:|"]
        lines += [f"| {name} | {value:,.0f} |" for name, value in calls.items()]
    return "\n".join(lines) + "\n"


def write_docs(path: Path, results: dict[str, Any]) -> None:
    """Replace the text between the ``stages`` markers of ``path``."""
    start, end = "<!-- stages:start -->", "<!-- stages:end -->"
    env = results["environment"]
    load = ", ".join(f"{value:.1f}" for value in env["load_average_at_start"])
    generated = (
        f"{start}\n_Generated by `benchmarks/bench_stages.py` on {results['generated']}: Python "
        f"{env['python']}, {env['cpu_count']} CPUs, aiobotocore {env['packages']['aiobotocore']}; "
        f"load average at start {load}._\n\n{markdown(results)}{end}"
    )
    text = path.read_text()
    if start not in text:
        raise SystemExit(f"{path} has no {start} marker")
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(head + generated + tail)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["defaults", "polling"],
        choices=["defaults", "polling", "notifications"],
    )
    parser.add_argument("--latency", default="uniform:1.5,2.5", help="emulator model latency")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--max-attempts", type=int, default=60)
    parser.add_argument("--calls", type=int, default=500, help="calls per operation (calls)")
    parser.add_argument("--pages", type=int, default=30, help="LIST pages per reader (calls)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per child run")
    parser.add_argument("--calls-only", action="store_true", help="skip the stages runs")
    parser.add_argument("--output", type=Path, default=HERE / "stages.json")
    parser.add_argument("--docs", type=Path)
    parser.add_argument("--report-only", action="store_true", help="rewrite --docs from --output")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["stages", "calls"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="polling", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default=ENDPOINT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.n = args.n[0]
        run = run_stages if args.mode == "stages" else run_calls
        print(json.dumps(asyncio.run(run(args))), flush=True)
        return
    if args.report_only:
        if args.docs:
            write_docs(args.docs, json.loads(args.output.read_text()))
        return
    results: dict[str, Any] = {
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "environment": environment(),
        "settings": {
            "latency": args.latency,
            "seed": args.seed,
            "waiter_config": {"delay": args.delay, "max_attempts": args.max_attempts},
            "predictor": "JSONSerializer, JSONDeserializer; defaults: inline='auto', "
            "polling: payloads uploaded (inline=False)",
        },
        "runs": [],
    }
    common = ["--delay", str(args.delay), "--max-attempts", str(args.max_attempts)]
    with tempfile.TemporaryDirectory(prefix="aiosagemaker-stages-") as tmp:
        servers = Servers(Path(tmp), args.latency, args.seed)
        try:
            servers.start()
            calls = ["--mode", "calls", "--calls", str(args.calls), "--pages", str(args.pages)]
            results["calls"] = run_child(servers, [*calls, "--n", "1"], args.timeout)
            # the server counts GETs of non-result keys as the emulator's: not meaningful here
            results["calls"].pop("s3_requests", None)
            print(json.dumps(results["calls"]), flush=True)
            for n in [] if args.calls_only else args.n:
                for variant in args.variants:
                    endpoint = NOTIFY_ENDPOINT if variant == "notifications" else ENDPOINT
                    argv = ["--mode", "stages", "--variant", variant, "--endpoint", endpoint]
                    record = run_child(servers, [*argv, "--n", str(n), *common], args.timeout)
                    record.setdefault("variant", variant)
                    record.setdefault("n", n)
                    results["runs"].append(record)
                    print(json.dumps(record), flush=True)
                    args.output.write_text(json.dumps(results, indent=1) + "\n")
        finally:
            servers.stop()
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    if args.docs:
        write_docs(args.docs, results)


if __name__ == "__main__":
    main()
