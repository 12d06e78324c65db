"""Client benchmark: aiosagemaker vs the official SDK vs a hand-written floor, N in flight.

Starts, on 127.0.0.1 and each in its own process: the in-memory S3 server (``s3server.py``)
and the local emulator (``aiosagemaker local serve``, pointed at that S3). Then, for every N
and variant, runs ``clients.py`` in a fresh process and records the client's wall time, CPU,
peak RSS and threads, the S3 requests it caused (counted by the server, by operation), the
detection latency (output written, per the S3 server's clock, to result in the caller's hands)
and the event-loop lag. The emulator's and the S3 server's CPU are reported too, so the backend
is visibly not the bottleneck.

Writes ``--output`` (JSON, one record per variant x N plus the environment), the Markdown table
``--docs`` and the plot ``--plot`` (needs matplotlib).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BUCKET = "bench"
ENDPOINT = "bench"
NOTIFY_ENDPOINT = "bench-notify"
REGION = "us-east-1"
ACCOUNT = "123456789012"
VARIANTS = ["floor", "polling", "polling-get", "polling-1.40", "notifications", "sdk"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a running process."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def http_json(url: str, method: str = "GET") -> Any:
    """GET/POST a loopback URL and decode its JSON answer."""
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1, nearest rank) or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Servers:
    """The S3 server and the emulator, each a subprocess; stopped by handle."""

    def __init__(self, workdir: Path, latency: str, seed: int) -> None:
        self.workdir = workdir
        self.latency = latency
        self.seed = seed
        self.s3: subprocess.Popen[str] | None = None
        self.emulator: subprocess.Popen[str] | None = None
        self.s3_url = ""
        self.env: dict[str, str] = {}

    def start(self) -> None:
        """Start both; fill :attr:`env` with the variables clients need."""
        self.s3 = subprocess.Popen(
            [sys.executable, str(HERE / "s3server.py"), "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.s3.stdout is not None
        line = self.s3.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"S3 server did not start: {line!r}")
        self.s3_url = line.split()[1]
        config = {
            "faults": {"model_latency": self.latency, "seed": self.seed},
            "endpoints": [
                {
                    "name": name,
                    "model": "aiosagemaker.local.models:echo",
                    "output_path": f"s3://{BUCKET}/outputs/{name}",
                    "failure_path": f"s3://{BUCKET}/failures/{name}",
                    # 10 x 1,000: the emulator's queue never holds back a request at N=10,000
                    "max_concurrent_invocations_per_instance": 1000,
                    "instance_count": 10,
                    **extra,
                }
                for name, extra in (
                    (ENDPOINT, {}),
                    (NOTIFY_ENDPOINT, {"success_topic": "bench-ok", "error_topic": "bench-err"}),
                )
            ],
        }
        config_file = self.workdir / "emulator.json"
        config_file.write_text(json.dumps(config))
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        self.emulator = subprocess.Popen(
            [
                *(sys.executable, "-m", "aiosagemaker.local", "serve"),
                *("--config", str(config_file), "--s3-endpoint-url", self.s3_url),
                *("--log-level", "WARNING"),
            ],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.emulator.stdout is not None
        while "AWS_SECRET_ACCESS_KEY" not in self.env:
            line = self.emulator.stdout.readline()
            if not line:
                raise RuntimeError("the emulator exited before printing its environment")
            key, _, value = line.removeprefix("export ").strip().partition("=")
            self.env[key] = value.strip("'")
        self.env["AWS_REGION"] = self.env["AWS_DEFAULT_REGION"] = REGION

    def stop(self) -> None:
        """Terminate both and wait for them."""
        for process in (self.emulator, self.s3):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by the emulator (moto included) and the S3 server."""
        assert self.emulator is not None and self.s3 is not None
        return {"emulator": proc_cpu(self.emulator.pid), "s3_server": proc_cpu(self.s3.pid)}

    def s3_counts(self) -> dict[str, dict[str, int]]:
        """Requests since the last reset by operation: the client's and the emulator's."""
        stats = http_json(f"{self.s3_url}/_bench/stats")
        return {"client": stats["client_counts"], "emulator": stats["backend_counts"]}


def run_client(
    servers: Servers, variant: str, n: int, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """Run one variant at one N in a fresh process; return its record."""
    http_json(f"{servers.s3_url}/_bench/reset", "POST")
    times_file = workdir / f"times-{variant}-{n}.json"
    python = {"sdk": args.sdk_python, "polling-1.40": args.botocore140_python}.get(variant)
    client_variant = "polling" if variant == "polling-1.40" else variant
    command = [python or sys.executable, str(HERE / "clients.py"), "--variant", client_variant]
    command += ["--n", str(n)]
    command += ["--bucket", BUCKET, "--times", str(times_file)]
    command += ["--delay", str(args.delay), "--max-attempts", str(args.max_attempts)]
    if variant == "notifications":
        command += ["--endpoint", NOTIFY_ENDPOINT]
        command += [f"--topic=arn:aws:sns:{REGION}:{ACCOUNT}:bench-{t}" for t in ("ok", "err")]
    else:
        command += ["--endpoint", ENDPOINT]
    env = {**os.environ, **servers.env}
    sdk_config = workdir / "sagemaker-config.yaml"
    sdk_config.write_text(  # no telemetry calls: the SDK must never reach for AWS
        'SchemaVersion: "1.0"\nSageMaker:\n  PythonSDK:\n    Modules:\n'
        "      TelemetryOptOut: true\n"
    )
    env["SAGEMAKER_USER_CONFIG_OVERRIDE"] = env["SAGEMAKER_ADMIN_CONFIG_OVERRIDE"] = str(sdk_config)
    record: dict[str, Any] = {"variant": variant, "n": n}
    phases: dict[str, dict[str, Any]] = {}
    snapshots: dict[str, dict[str, Any]] = {}
    before = servers.cpu()
    started = time.monotonic()
    child = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    stderr_tail: list[str] = []

    def drain_stderr() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            stderr_tail[:] = [*stderr_tail[-20:], line.rstrip()]

    threading.Thread(target=drain_stderr, daemon=True).start()

    def read_phases() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("{"):
                phase = json.loads(line)
                if phase["phase"] == "progress":
                    phases["progress"] = phase
                    continue
                if phase["phase"] == "warm":  # measure from here: zero the counters
                    http_json(f"{servers.s3_url}/_bench/reset", "POST")
                    before.update(servers.cpu())
                    assert child.stdin is not None
                    child.stdin.write("go\n")
                    child.stdin.flush()
                    continue
                cpu = servers.cpu()
                snapshots[phase["phase"]] = {
                    "s3": servers.s3_counts(),
                    "cpu": {k: cpu[k] - before[k] for k in cpu},
                }
                phases[phase["phase"]] = phase

    reader = threading.Thread(target=read_phases, daemon=True)
    reader.start()
    timeout = args.timeout if n < 10000 else args.timeout_10k
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        record["failure"] = f"did not finish within {timeout:.0f} s (killed)"
    reader.join(10)
    record["process_seconds"] = round(time.monotonic() - started, 3)
    if child.returncode and "failure" not in record:
        record["failure"] = f"exit code {child.returncode}: " + " | ".join(stderr_tail[-3:])
    done = phases.get("done")
    if done is None:
        record["status"] = "failed"
        record.setdefault("failure", "no result line")
        if "progress" in phases:  # how far it got
            record["progress_at_failure"] = {
                k: v for k, v in phases["progress"].items() if k != "phase"
            }
        return record
    done.pop("phase")
    s3 = snapshots["done"]["s3"]
    record.update(done)
    record["status"] = "ok" if done["errors"] == 0 and done["completed"] == n else "failed"
    if record["status"] == "failed" and "failure" not in record:
        record["failure"] = f"{done['errors']} errors, {done['completed']} of {n} completed"
    record["cpu_ms_per_request"] = 1000 * done["cpu_seconds"] / n
    record["s3_requests"] = s3["client"]
    record["s3_requests_per_result"] = sum(s3["client"].values()) / max(1, done["completed"])
    record["emulator_s3_requests"] = s3["emulator"]
    record["backend_cpu_seconds"] = snapshots["done"]["cpu"]
    if "after" not in phases and "progress" in phases and variant == "sdk":
        # killed while its leftover waiter threads were still polling: how far they got
        record["leftover_threads_at_kill"] = {
            k: v for k, v in phases["progress"].items() if k != "phase"
        }
    if "after" in phases:
        after = phases["after"]
        after.pop("phase")
        record["after_leftover_threads"] = {
            **after,
            "s3_requests": snapshots["after"]["s3"]["client"],
            "s3_requests_per_result": sum(snapshots["after"]["s3"]["client"].values())
            / max(1, done["completed"]),
            "backend_cpu_seconds": snapshots["after"]["cpu"],
        }
    written: dict[str, float] = {}
    for prefix in (f"outputs/{ENDPOINT}/", f"outputs/{NOTIFY_ENDPOINT}/"):
        query = f"bucket={BUCKET}&prefix={prefix}"
        written.update(http_json(f"{servers.s3_url}/_bench/puts?{query}"))
    latencies = []
    for location, arrived in json.loads(times_file.read_text()):
        key = location.split("/", 3)[3]
        if key in written:
            latencies.append(arrived - written[key])
    record["detection_p50"] = percentile(latencies, 0.5)
    record["detection_p99"] = percentile(latencies, 0.99)
    record["detection_max"] = max(latencies, default=None)
    return record


def environment(args: argparse.Namespace) -> dict[str, Any]:
    """Versions, CPU count and Python of the benchmark and SDK environments."""
    from importlib.metadata import version

    def versions(python: str, names: list[str]) -> dict[str, str]:
        code = (
            "import json, importlib.metadata as m; "
            f"print(json.dumps({{n: m.version(n) for n in {names!r}}}))"
        )
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
        return dict(json.loads(out.stdout)) if out.returncode == 0 else {"error": out.stderr[-200:]}

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": {n: version(n) for n in ["aiosagemaker", "aiobotocore", "botocore", "aiohttp"]},
        "sdk_packages": versions(args.sdk_python, ["sagemaker", "boto3", "botocore"])
        if args.sdk_python
        else None,
        "model_latency": args.latency,
        "seed": args.seed,
        "waiter_config": {"delay": args.delay, "max_attempts": args.max_attempts},
        "warm_up": "one request per client process before measuring (caches warm)",
    }


def headline(records: list[dict[str, Any]], n: int) -> dict[str, float | None]:
    """Ratios of aiosagemaker polling against the SDK and the floor at ``n``."""
    by = {r["variant"]: r for r in records if r["n"] == n and r.get("status") == "ok"}

    def ratio(a: str, b: str, key: str) -> float | None:
        if a in by and b in by and by[b].get(key):
            return float(by[a][key]) / float(by[b][key])
        return None

    return {
        "polling_cpu_vs_sdk": ratio("polling", "sdk", "cpu_seconds"),
        "polling_rss_vs_sdk": ratio("polling", "sdk", "peak_rss_kb"),
        "polling_cpu_vs_floor": ratio("polling", "floor", "cpu_seconds"),
        "polling_detection_p50_vs_sdk": ratio("polling", "sdk", "detection_p50"),
        "polling_rss_vs_floor": ratio("polling", "floor", "peak_rss_kb"),
        "polling_detection_p50_vs_floor": ratio("polling", "floor", "detection_p50"),
        "polling_get_cpu_vs_floor": ratio("polling-get", "floor", "cpu_seconds"),
        "notifications_cpu_vs_sdk": ratio("notifications", "sdk", "cpu_seconds"),
        "notifications_cpu_vs_floor": ratio("notifications", "floor", "cpu_seconds"),
    }


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    """The results table (and headline ratios) as Markdown."""
    lines = [
        "| variant | N | status | wall s | client CPU s | CPU ms/req | peak RSS MB | threads "
        "| client's S3 requests (counted by the server) | S3 req/result "
        "| detection p50 / p99 s | loop lag p99 ms "
        "| emulator CPU s | S3 server CPU s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    for r in results["records"]:
        if r.get("status") != "ok" and "cpu_seconds" not in r:
            progress = r.get("progress_at_failure")
            where = ""
            if progress:
                where = (
                    f" (at {progress['seconds']:.0f} s: {progress['completed']:,} results, "
                    f"{progress['threads']:,} threads, {progress['peak_rss_kb'] / 1024:.0f} MB, "
                    f"{progress['cpu_seconds']:.0f} CPU s)"
                )
            lines.append(
                f"| {r['variant']} | {r['n']:,} | **{r.get('status')}**: "
                f"{r.get('failure', '').removeprefix('skipped: ')}"
                f"{where} " + "| - " * 11 + "|"
            )
            continue
        ops = ", ".join(f"{k} {v:,}" for k, v in sorted(r["s3_requests"].items()))
        lag = r.get("loop_lag_p99")
        status = r["status"] if r["status"] == "ok" else f"**failed**: {r.get('failure', '')}"
        lines.append(
            f"| {r['variant']} | {r['n']:,} | {status} | {_fmt(r['wall_seconds'], 1)} "
            f"| {_fmt(r['cpu_seconds'])} | {_fmt(r['cpu_ms_per_request'], 1)} "
            f"| {r['peak_rss_kb'] / 1024:.0f} | {r['threads']:,} | {ops} "
            f"| {_fmt(r['s3_requests_per_result'], 1)} "
            f"| {_fmt(r['detection_p50'])} / {_fmt(r['detection_p99'])} "
            f"| {_fmt(None if lag is None else 1000 * lag, 1)} "
            f"| {_fmt(r['backend_cpu_seconds']['emulator'], 1)} "
            f"| {_fmt(r['backend_cpu_seconds']['s3_server'], 1)} |"
        )
        after = r.get("after_leftover_threads")
        if r["variant"] == "sdk" and not after and r.get("failure"):
            lines.append(
                f"| ↳ sdk, leftover waiter threads | {r['n']:,} | still polling, {r['failure']} "
                + "| - " * 11
                + "|"
            )
        if after:
            ops = ", ".join(f"{k} {v:,}" for k, v in sorted(after["s3_requests"].items()))
            lines.append(
                f"| ↳ sdk, after its leftover waiter threads finish | {r['n']:,} | "
                f"| {_fmt(after['wall_seconds'], 1)} | {_fmt(after['cpu_seconds'])} "
                f"| {_fmt(1000 * after['cpu_seconds'] / r['n'], 1)} | | | {ops} "
                f"| {_fmt(after['s3_requests_per_result'], 1)} | | "
                f"| {_fmt(after['backend_cpu_seconds']['emulator'], 1)} "
                f"| {_fmt(after['backend_cpu_seconds']['s3_server'], 1)} |"
            )
    return "\n".join(lines) + "\n"


def pending_section(path: Path) -> str:
    """The 100,000-pending figures of ``bench_pending.py``, if it ran."""
    if not path.exists():
        return ""
    p = json.loads(path.read_text())
    return (
        f"\n**{p['n']:,} results pending on one predictor** (`bench_pending.py`, "
        f"{p['generated']}): {p['errors']} errors; "
        f"{_fmt(p['s3_requests_per_second_while_waiting'], 1)} S3 requests/s while all wait; "
        f"{_fmt(p['s3_reads_per_result_arriving'], 3)} S3 reads per result while "
        f"{p['write_rate_per_second']:,.0f} results/s arrive; detection p50 / p99 "
        f"{_fmt(p['detection_p50'])} / {_fmt(p['detection_p99'])} s; peak RSS "
        f"{p['peak_rss_kb'] / 1024:.0f} MB; client CPU {_fmt(p['cpu_seconds'], 1)} s; loop lag "
        f"p99 {_fmt(1000 * p['loop_lag_p99'], 1)} ms (max {_fmt(1000 * p['loop_lag_max'], 1)}).\n"
    )


def write_docs(path: Path, results: dict[str, Any]) -> None:
    """Replace the generated part of ``path`` (between the markers) with the results."""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    env = results["environment"]
    ratio_lines = ""
    for n, key in ((1000, "headline_n1000"), (10000, "headline_n10000")):
        ratios = results.get(key) or {}
        lines = "".join(
            f"- `{name}`: {_fmt(value, 3)}\n" for name, value in ratios.items() if value is not None
        )
        if lines:
            ratio_lines += f"Ratios at N = {n:,} (same run):\n\n{lines}\n"
    generated = (
        f"{start}\n_Generated by `nox -s bench` on {results['generated']}: Python "
        f"{env['python']}, {env['cpu_count']} CPUs, aiobotocore {env['packages']['aiobotocore']}, "
        f"SDK {(env.get('sdk_packages') or {}).get('sagemaker', '-')}; model latency "
        f"`{env['model_latency']}` (seed {env['seed']}); WaiterConfig(delay="
        f"{env['waiter_config']['delay']}, max_attempts={env['waiter_config']['max_attempts']})._"
        f"\n\n{ratio_lines}{markdown(results)}{pending_section(HERE / 'pending.json')}{end}"
    )
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{start}\n{end}\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(head + generated + tail)


def plot(path: Path, results: dict[str, Any]) -> None:
    """Four panels against N: client CPU, peak RSS, S3 requests per result, detection p50."""
    import matplotlib  # type: ignore[import-not-found,unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]

    panels = [
        ("cpu_seconds", "client CPU (s)", 1.0),
        ("peak_rss_kb", "peak RSS (MB)", 1 / 1024),
        ("s3_requests_per_result", "S3 requests per result", 1.0),
        ("detection_p50", "detection latency p50 (s)", 1.0),
    ]
    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    for axis, (key, label, scale) in zip(axes.flat, panels, strict=True):
        for variant in VARIANTS:
            points = [
                (r["n"], r[key] * scale)
                for r in results["records"]
                if r["variant"] == variant and r.get("status") == "ok" and r.get(key) is not None
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, marker="o", label=variant)
        axis.set_xscale("log")
        if key != "detection_p50":
            axis.set_yscale("log")
        axis.set_xlabel("requests in flight (N)")
        axis.set_title(label)
        axis.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend()
    figure.suptitle("aiosagemaker vs SageMaker SDK v2 (thread per request) vs aiobotocore floor")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, nargs="+", default=[1, 100, 1000, 10000])
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--sdk-python", help="python of the SDK environment (skip SDK if unset)")
    parser.add_argument("--sdk-max-n", type=int, default=10000, help="largest N for the SDK")
    parser.add_argument(
        "--botocore140-python",
        help="python of an environment with aioboto3 15.x / botocore 1.40 (the polling-1.40 row)",
    )
    parser.add_argument(
        "--notifications-max-n",
        type=int,
        default=10000,
        help="largest N for notifications",
    )
    parser.add_argument("--latency", default="uniform:1.5,2.5", help="emulator model latency")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--max-attempts", type=int, default=60)
    parser.add_argument("--timeout", type=float, default=420, help="seconds per client run")
    parser.add_argument(
        "--timeout-10k", type=float, default=200, help="seconds per client run at N >= 10,000"
    )
    parser.add_argument("--output", type=Path, default=HERE / "results.json")
    parser.add_argument("--docs", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite --docs and --plot from an existing --output file, run nothing",
    )
    args = parser.parse_args()
    if args.report_only:
        saved: dict[str, Any] = json.loads(args.output.read_text())
        if args.docs:
            write_docs(args.docs, saved)
        if args.plot:
            plot(args.plot, saved)
        return
    results: dict[str, Any] = {
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "environment": environment(args),
        "records": [],
    }
    with tempfile.TemporaryDirectory(prefix="aiosagemaker-bench-") as tmp:
        servers = Servers(Path(tmp), args.latency, args.seed)
        try:
            servers.start()
            for n in args.n:
                for variant in args.variants:
                    if variant == "sdk" and not args.sdk_python:
                        continue
                    if variant == "polling-1.40" and not args.botocore140_python:
                        continue
                    if variant == "sdk" and n > args.sdk_max_n:
                        results["records"].append(
                            {"variant": variant, "n": n, "status": "skipped", "failure": "skipped"}
                        )
                        continue
                    if variant == "notifications" and n > args.notifications_max_n:
                        results["records"].append(
                            {
                                "variant": variant,
                                "n": n,
                                "status": "skipped",
                                "failure": "skipped: moto's SNS/SQS in the emulator is the "
                                "bottleneck (see N = 1,000)",
                            }
                        )
                        continue
                    record = run_client(servers, variant, n, args, Path(tmp))
                    results["records"].append(record)
                    print(json.dumps({k: record.get(k) for k in _SUMMARY}), flush=True)
                    results["headline_n1000"] = headline(results["records"], 1000)
                    results["headline_n10000"] = headline(results["records"], 10000)
                    args.output.write_text(json.dumps(results, indent=1) + "\n")
        finally:
            servers.stop()
    if args.docs:
        write_docs(args.docs, results)
    if args.plot:
        plot(args.plot, results)


_SUMMARY = [
    "variant",
    "n",
    "status",
    "failure",
    "wall_seconds",
    "cpu_seconds",
    "peak_rss_kb",
    "threads",
    "s3_requests",
    "detection_p50",
    "loop_lag_p99",
    "backend_cpu_seconds",
]

if __name__ == "__main__":
    main()
