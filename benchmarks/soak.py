"""Soak: N requests through S3 and runtime faults and an S3 outage; count what went wrong.

Runs in one process on 127.0.0.1: the local emulator (moto behind it), a fault-injecting proxy
in front of S3 (5xx, SlowDown, resets, slow objects, then an outage in the middle of the run)
and one in front of the runtime (InvokeEndpointAsync answers dropped after acceptance, and
the emulator's own ServiceUnavailable rejections). The client submits N requests, 2 % of them
failing in the model, and waits for each with the default at-most-once policy; it resubmits
a request only when the library says it never ran. Figures: lost, wrong and duplicated
results, duplicate inferences (counted from what reached the emulator), ambiguous submissions
and how each was accounted for, leaked tasks and client sockets, event-loop lag, peak RSS.
Polling and notification modes. Writes ``--output`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from aiosagemaker import (  # noqa: E402
    AsyncInferenceModelError,
    AsyncPredictor,
    JSONDeserializer,
    JSONSerializer,
    NotificationQueue,
    PollingTimeoutError,
    SubmissionUncertainError,
    UnexpectedClientError,
    WaiterConfig,
    ensure_notification_queue,
)
from aiosagemaker._aws_errors import classify  # noqa: E402
from aiosagemaker.local import EndpointSpec, FaultConfig, LocalEndpoint  # noqa: E402
from s3_fault_proxy import Fault, S3FaultProxy, running_proxy  # noqa: E402

BUCKET = "soak-inputs"
INVOKE = "/async-invocations"
WAIT = WaiterConfig(max_attempts=None, delay=0.2, backoff=1.5, max_delay=5, timeout=900)
"""The SDK's 15 minutes, checking within 0.2 s at first: a result not found by then is lost."""
FAIL_EVERY = 50


async def soak_model(body: bytes, content_type: str | None, accept: str | None) -> Any:
    """Echoes ``{"output": n}`` after 10-60 ms; raises for ``{"fail": ...}``."""
    spec = json.loads(body)
    await asyncio.sleep(random.uniform(0.01, 0.06))
    if "fail" in spec:
        raise RuntimeError(spec["fail"])
    return json.dumps(spec["output"]).encode(), "application/json"


@dataclass
class Figures:
    """What one soak run counted."""

    mode: str
    requests: int
    results_ok: int = 0
    model_failures_seen: int = 0
    lost: int = 0
    wrong: int = 0
    duplicated_results: int = 0
    other_errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    resubmitted_never_ran: int = 0
    ambiguous_submissions: int = 0
    ambiguous_waited_for: int = 0
    ambiguous_without_location: int = 0
    ambiguous_never_accepted: int = 0
    late_results: int = 0
    inferences_at_emulator: int = 0
    duplicate_inferences: int = 0
    leaked_tasks: int = 0
    leaked_client_sockets: int = 0
    loop_lag_p50_s: float = 0.0
    loop_lag_p99_s: float = 0.0
    loop_lag_max_s: float = 0.0
    peak_rss_mb: float = 0.0
    wall_s: float = 0.0
    faults_hit: dict[str, int] = field(default_factory=dict)
    engine: dict[str, int] = field(default_factory=dict)


def client_sockets(ports: set[int]) -> int:
    """ESTABLISHED TCP connections of this process whose remote port is one of ``ports``."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) in ports:
                count += 1
    return count


async def present(local: LocalEndpoint, paths: list[str]) -> int:
    """How many of these S3 objects exist now (asked of moto directly, after the run)."""
    import aiobotocore.session

    found = 0
    async with aiobotocore.session.get_session().create_client(
        "s3", endpoint_url=local.s3_url
    ) as s3:
        for path in paths:
            bucket, _, key = path[len("s3://") :].partition("/")
            try:
                await s3.head_object(Bucket=bucket, Key=key)
                found += 1
            except Exception:  # absent (404) or unreadable: not there
                continue
    return found


async def lag_monitor(samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.05)
        samples.append(max(0.0, time.perf_counter() - started - 0.05))


def s3_faults(bucket_path: str) -> list[Fault]:
    return [
        Fault("GET", bucket_path, status=500, code="InternalError", rate=0.01),
        Fault("GET", bucket_path, status=503, code="SlowDown", rate=0.02),
        Fault("GET", bucket_path, reset=True, rate=0.01),
        Fault("GET", bucket_path, after_forward="hang", hang=0.5, rate=0.01),  # slow objects
        Fault("PUT", "/", status=503, code="SlowDown", rate=0.01),
        Fault("PUT", "/", reset=True, rate=0.005),
    ]


def fault_label(fault: Fault) -> str:
    if fault.after_forward == "drop":
        what = "answer dropped after acceptance"
    elif fault.after_forward == "hang":
        what = f"slow object ({fault.hang:g} s)"
    else:
        what = "connection reset" if fault.reset else f"{fault.status} {fault.code}"
    return f"{fault.method} {what} @{fault.rate:g}"


async def run_mode(
    mode: str,
    n: int,
    concurrency: int,
    outage_s: float,
    local: LocalEndpoint,
    s3_proxy: S3FaultProxy,
    runtime_proxy: S3FaultProxy,
    wait_timeout: float,
) -> Figures:
    figures = Figures(mode=mode, requests=n)
    endpoint = "soak" if mode == "polling" else "soak-notify"
    s3_proxy.reset()
    runtime_proxy.reset()
    faults = [*s3_faults("/"), Fault("POST", INVOKE, after_forward="drop", rate=0.02)]
    for fault in faults[:-1]:
        s3_proxy.add(fault)
    runtime_proxy.add(faults[-1])
    local.set_faults(FaultConfig(unavailable_rate=0.01, seed=7))
    before = local.stats(endpoint)
    notifications = None
    if mode == "notifications":
        spec = local.endpoint(endpoint)
        setup = await ensure_notification_queue(
            f"soak-{os.getpid()}", [spec.success_topic_arn or "", spec.error_topic_arn or ""]
        )
        notifications = NotificationQueue(setup.queue_url)
    baseline_tasks = len(asyncio.all_tasks())
    ports = {int(s3_proxy.url.rsplit(":", 1)[1]), int(runtime_proxy.url.rsplit(":", 1)[1])}
    outcomes: Counter[str] = Counter()
    seen_results: Counter[int] = Counter()
    ambiguous_ids: dict[int, str] = {}
    timed_out: list[tuple[int, str]] = []
    lag: list[float] = []
    stop = asyncio.Event()
    limiter = asyncio.Semaphore(concurrency)
    started = time.perf_counter()
    predictor = AsyncPredictor(
        endpoint,
        serializer=JSONSerializer(),
        deserializer=JSONDeserializer(),
        default_bucket=BUCKET,
        waiter_config=replace(WAIT, timeout=wait_timeout),
        notifications=notifications,
    )

    half = asyncio.Event()
    submitted = 0

    async def one(i: int) -> None:
        nonlocal submitted
        expected_failure = i % FAIL_EVERY == 7
        payload = {"fail": f"model failure {i}"} if expected_failure else {"output": i}
        async with limiter:  # bounds submissions in flight; the waits are all concurrent
            response = None
            delay = 0.2
            while response is None:
                try:
                    response = await predictor.predict_async(payload)
                except SubmissionUncertainError as error:
                    figures.ambiguous_submissions += 1
                    if error.response is None:
                        figures.ambiguous_without_location += 1
                        outcomes["ambiguous, no location"] += 1
                        return
                    figures.ambiguous_waited_for += 1
                    ambiguous_ids[i] = error.inference_id or ""
                    response = error.response
                except UnexpectedClientError as error:
                    cause = error.__cause__
                    if cause is None or not classify(cause).retryable:
                        outcomes[f"submit: {error.code}"] += 1
                        return
                    figures.resubmitted_never_ran += 1  # the library says it never ran
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            submitted += 1
            if submitted >= n // 2:
                half.set()
        try:
            value = await response
        except AsyncInferenceModelError:
            outcomes["failed" if expected_failure else "wrong"] += 1
            return
        except PollingTimeoutError:
            timed_out.append((i, response.output_path))
            return
        except Exception as error:  # counted, never raised: the soak reports it
            outcomes[f"wait: {type(error).__name__}"] += 1
            sample = f"{type(error).__name__}: {error}"[:400]
            if len(figures.error_samples) < 5 and sample not in figures.error_samples:
                figures.error_samples.append(sample)
            return
        seen_results[value] += 1
        outcomes["ok" if value == i and not expected_failure else "wrong"] += 1

    async def outage() -> None:
        await half.wait()  # half of the requests submitted: S3 goes away for outage_s
        down = s3_proxy.add(Fault("*", "/", reset=True))
        await asyncio.sleep(outage_s)
        s3_proxy.remove(down)
        figures.faults_hit[f"outage of {outage_s:g} s: requests reset"] = down.hits

    monitor = asyncio.ensure_future(lag_monitor(lag, stop))
    async with predictor:
        outage_task = asyncio.ensure_future(outage()) if outage_s > 0 else None
        await asyncio.gather(*(one(i) for i in range(n)))
        if outage_task is not None:
            await outage_task
        figures.engine = dict(asdict(predictor.engine_stats))
    stop.set()
    await monitor
    figures.wall_s = round(time.perf_counter() - started, 1)
    await local.wait_idle(120)
    figures.results_ok = outcomes.pop("ok", 0)
    figures.model_failures_seen = outcomes.pop("failed", 0)
    figures.wrong = outcomes.pop("wrong", 0)
    figures.duplicated_results = sum(c - 1 for c in seen_results.values() if c > 1)
    figures.other_errors = dict(outcomes)
    after = local.stats(endpoint)
    figures.inferences_at_emulator = after.accepted - before.accepted
    figures.faults_hit["emulator ServiceUnavailable @0.01"] = (
        after.rejected_unavailable - before.rejected_unavailable
    )
    accepted_ids: Counter[str] = Counter()
    for index, ((method, path), headers) in enumerate(
        zip(runtime_proxy.requests, runtime_proxy.headers, strict=True)
    ):
        if method == "POST" and INVOKE in path and runtime_proxy.upstream_status.get(index) == 202:
            lowered = {k.lower(): v for k, v in headers.items()}
            accepted_ids[lowered.get("x-amzn-sagemaker-inference-id", "")] += 1
    figures.duplicate_inferences = sum(c - 1 for c in accepted_ids.values() if c > 1)
    # A wait that timed out is lost unless it was an ambiguous submission that never reached
    # the emulator (the error said "may or may not have been accepted": it was not).
    never = {i for i, _ in timed_out if i in ambiguous_ids and ambiguous_ids[i] not in accepted_ids}
    figures.ambiguous_never_accepted = len(never)
    late = await present(local, [path for i, path in timed_out if i not in never])
    figures.late_results = late  # written, but after the wait's 15 minutes: not lost
    figures.lost = len(timed_out) - len(never) - late
    for _ in range(100):
        leaked = len(asyncio.all_tasks()) - baseline_tasks
        sockets = client_sockets(ports)
        if leaked <= 0 and sockets == 0:
            break
        await asyncio.sleep(0.05)
    figures.leaked_tasks = max(0, leaked)
    figures.leaked_client_sockets = sockets
    ordered = sorted(lag) or [0.0]
    figures.loop_lag_p50_s = round(ordered[len(ordered) // 2], 4)
    figures.loop_lag_p99_s = round(ordered[int(len(ordered) * 0.99)], 4)
    figures.loop_lag_max_s = round(ordered[-1], 4)
    figures.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    figures.faults_hit |= {fault_label(f): f.hits for f in faults}
    return figures


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    endpoints = [
        EndpointSpec(name="soak", model=soak_model, max_concurrent_invocations_per_instance=200),
        EndpointSpec(
            name="soak-notify",
            model=soak_model,
            success_topic="soak-success",
            error_topic="soak-error",
            max_concurrent_invocations_per_instance=200,
        ),
    ]
    async with LocalEndpoint(endpoints=endpoints) as local:
        with running_proxy(local.s3_url) as s3_proxy, running_proxy(local.runtime_url) as rt:
            os.environ.update(local.env)
            os.environ["AWS_ENDPOINT_URL_S3"] = s3_proxy.url
            os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = rt.url
            import aiobotocore.session

            session = aiobotocore.session.get_session()
            async with session.create_client("s3", endpoint_url=local.s3_url) as s3:
                await s3.create_bucket(Bucket=BUCKET)
            runs = []
            for mode in args.modes:
                figures = await run_mode(
                    mode, args.n, args.concurrency, args.outage, local, s3_proxy, rt, args.wait
                )
                print(json.dumps(asdict(figures)), flush=True)
                runs.append(asdict(figures))
    return {
        "n": args.n,
        "concurrency": args.concurrency,
        "outage_s": args.outage,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--outage", type=float, default=20.0, help="S3 outage in seconds")
    parser.add_argument("--wait", type=float, default=900.0, help="timeout of each wait")
    parser.add_argument("--modes", nargs="+", default=["polling", "notifications"])
    parser.add_argument("--output", type=Path, default=HERE / "soak.json")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    if args.output.exists():  # keep the other modes' runs of the same size
        earlier = json.loads(args.output.read_text())
        if earlier.get("n") == args.n:
            kept = [run for run in earlier.get("runs", []) if run["mode"] not in args.modes]
            report["runs"] = kept + report["runs"]
    args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
