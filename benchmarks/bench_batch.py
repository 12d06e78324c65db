"""Batch benchmark: ``predictor.map()``'s memory against input size, and the batch CLI's speed.

Starts the in-memory S3 server and the local emulator (echo model, fixed model latency,
10 x 1,000 invocation slots), each in its own process on 127.0.0.1, as ``bench_clients.py``
does. Then, against that one emulator:

1. ``map``: for every ``--sizes`` N, a fresh process runs ``predictor.map()`` over N inputs
   made lazily by a generator, ``--concurrency`` in flight, after one warm-up request. It
   samples its own RSS (``/proc/self/status``) all along and checks every outcome against
   what the echo model returns for that input. Reported: wall time, results per second,
   peak RSS, ok / failed / wrong / missing / duplicated outcomes.
2. ``cli``: ``python -m aiosagemaker batch ENDPOINT INPUT.jsonl --output OUT.jsonl --state
   STATE.db --concurrency C`` over ``--cli-n`` inputs, timed from process start to exit (its
   start-up included); OUT.jsonl is checked line by line.

The S3 server forgets every object between runs, and each run writes under its own output
sub-prefix, so no run sees another's results. Ratios: peak RSS of the largest size over the
smallest (flat: <= 1.1) and map's throughput over the CLI's at the same N (<= 1.2). Writes
``--output`` (JSON) and, with ``--docs``, the section between ``<!-- batch:start -->`` and
``<!-- batch:end -->``. Exits 1 if any outcome was wrong, missing or duplicated, or failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench_clients import BUCKET, ENDPOINT, Servers, http_json
from clients import cpu_seconds, proc_status

HERE = Path(__file__).resolve().parent
RSS_GOAL = 1.1
THROUGHPUT_GOAL = 1.2
DOCS_START, DOCS_END = "<!-- batch:start -->", "<!-- batch:end -->"
DOCS_HEADING = "## Batches: `map()` and the batch CLI"


def payload(index: int) -> dict[str, Any]:
    """Input ``index``; the echo model returns it unchanged."""
    return {"id": index, "inputs": [index, index + 1, index + 2]}


@dataclass
class Tally:
    """What became of N inputs: each index should be seen once, with the right result."""

    n: int
    ok: int = 0
    failed: int = 0
    wrong: int = 0

    def __post_init__(self) -> None:
        self.seen = bytearray(self.n)  # a count per index, capped at 2: O(N) bytes, not objects

    def add(self, index: int, error: str | None, result: Any) -> None:
        if not 0 <= index < self.n:
            self.wrong += 1
            return
        self.seen[index] = min(2, self.seen[index] + 1)
        if error is not None:
            self.failed += 1
        elif result == payload(index):
            self.ok += 1
        else:
            self.wrong += 1

    def figures(self) -> dict[str, Any]:
        missing, duplicated = self.seen.count(0), self.seen.count(2)
        correct = not (self.failed or self.wrong or missing or duplicated)
        return {
            "ok": self.ok,
            "failed": self.failed,
            "wrong": self.wrong,
            "missing": missing,
            "duplicated": duplicated,
            "status": "ok" if correct else "failed",
        }


# -- the map() process ---------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Samples this process's RSS every ``interval``: the peak, and the peak of each second."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_kb = 0
        self.per_second_kb: list[int] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stopped.wait(self.interval):
            rss = proc_status()["VmRSS"]
            self.peak_kb = max(self.peak_kb, rss)
            second = int(time.monotonic() - started)
            if second >= len(self.per_second_kb):
                self.per_second_kb.extend([0] * (second + 1 - len(self.per_second_kb)))
            self.per_second_kb[second] = max(self.per_second_kb[second], rss)


async def map_process(args: argparse.Namespace) -> dict[str, Any]:
    """One ``map()`` run over ``args.n`` inputs; the figures as a dict."""
    from aiosagemaker import AsyncPredictor, JSONDeserializer, JSONSerializer

    async with AsyncPredictor(
        ENDPOINT,
        serializer=JSONSerializer(),
        deserializer=JSONDeserializer(),
        default_bucket=BUCKET,
        inline="auto",  # as the batch CLI sends its payloads
    ) as predictor:
        if await predictor.predict(payload(-1)) != payload(-1):  # warm-up: clients open
            raise SystemExit("the warm-up request got a wrong result")
        baseline_kb = proc_status()["VmRSS"]
        sampler = RssSampler()
        sampler.start()
        tally = Tally(args.n)
        inputs = (payload(i) for i in range(args.n))
        started, cpu = time.monotonic(), cpu_seconds()
        async with predictor.map(inputs, concurrency=args.concurrency) as outcomes:
            async for outcome in outcomes:
                error = None if outcome.exception is None else repr(outcome.exception)
                tally.add(outcome.index, error, outcome.result)
        wall, cpu = time.monotonic() - started, cpu_seconds() - cpu
        sampler.stopped.set()
        sampler.join()
        sampler.peak_kb = max(sampler.peak_kb, proc_status()["VmRSS"])  # a run under 50 ms
    return {
        "wall_s": wall,
        "cpu_s": round(cpu, 2),
        "peak_rss_kb": sampler.peak_kb,
        "hwm_kb": proc_status()["VmHWM"],
        "baseline_rss_kb": baseline_kb,
        "rss_mb_per_second": [round(kb / 1024, 1) for kb in sampler.per_second_kb],
        **tally.figures(),
    }


# -- the orchestrator ----------------------------------------------------------------------


@dataclass
class Finished:
    """A child process's exit code, wall time, peak RSS and CPU (the kernel's), output."""

    returncode: int
    wall_s: float
    hwm_kb: int
    cpu_s: float
    stdout: str
    stderr: str


def run_process(command: list[str], env: dict[str, str], timeout: float, workdir: Path) -> Finished:
    """Run ``command`` to its end (killed after ``timeout``); its rusage from ``wait4``."""
    out, err = workdir / "child.out", workdir / "child.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, text=True)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                child.kill()
                _, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.05)
        wall = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Finished(
        child.returncode,
        wall,
        usage.ru_maxrss,  # kB on Linux
        round(usage.ru_utime + usage.ru_stime, 2),
        out.read_text(),
        err.read_text(),
    )


def row(kind: str, n: int, concurrency: int, wall_s: float, peak_kb: int) -> dict[str, Any]:
    """The fields every row has."""
    return {
        "kind": kind,
        "size": n,
        "concurrency": concurrency,
        "wall_s": round(wall_s, 3),
        "results_per_s": round(n / wall_s, 1) if wall_s > 0 else None,
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }


def failure(finished: Finished, timeout: float, workdir: Path) -> str:
    """Why a child produced no figures: its last line of stderr (no temporary paths)."""
    if finished.returncode < 0:
        return f"killed after {timeout:.0f} s"
    last = (finished.stderr.strip().splitlines() or [""])[-1].replace(str(workdir), "...")
    return f"exit code {finished.returncode}: {last}"


def run_map(servers: Servers, n: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """map() over ``n`` inputs in a fresh process."""
    command = [sys.executable, __file__, "--role", "map", "--n", str(n)]
    command += ["--concurrency", str(args.concurrency)]
    before = servers.cpu()
    finished = run_process(command, child_env(servers), args.timeout, workdir)
    lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
    if finished.returncode != 0 or not lines:
        record = row("map", n, args.concurrency, finished.wall_s, finished.hwm_kb)
        return {**record, "status": "failed", "failure": failure(finished, args.timeout, workdir)}
    figures = json.loads(lines[-1])
    return {
        **row("map", n, args.concurrency, figures.pop("wall_s"), figures.pop("peak_rss_kb")),
        "hwm_mb": round(figures.pop("hwm_kb") / 1024, 1),
        "process_cpu_s": finished.cpu_s,
        "baseline_rss_mb": round(figures.pop("baseline_rss_kb") / 1024, 1),
        **figures,
        "backend_cpu_s": cpu_since(servers, before),
    }


def run_cli(servers: Servers, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The batch CLI over ``--cli-n`` inputs; OUT.jsonl checked line by line."""
    n = args.cli_n
    inputs, output, state = workdir / "inputs.jsonl", workdir / "out.jsonl", workdir / "state.db"
    with inputs.open("w") as lines:
        lines.writelines(json.dumps(payload(i)) + "\n" for i in range(n))
    command = [sys.executable, "-m", "aiosagemaker", "batch", ENDPOINT, str(inputs)]
    command += ["--output", str(output), "--state", str(state)]
    command += ["--concurrency", str(args.concurrency), "--bucket", BUCKET, "--no-progress"]
    before = servers.cpu()
    finished = run_process(command, child_env(servers), args.timeout, workdir)
    record = row("cli", n, args.concurrency, finished.wall_s, finished.hwm_kb)
    if finished.returncode != 0 or not output.exists():
        return {**record, "status": "failed", "failure": failure(finished, args.timeout, workdir)}
    tally = Tally(n)
    for line in output.read_text().splitlines():
        outcome = json.loads(line)
        error = outcome.get("error")
        tally.add(outcome["index"], None if error is None else str(error), outcome.get("result"))
    summary = re.search(r"^done: ok \d+, failed \d+, ([\d.]+) s", finished.stderr, re.M)
    return {
        **record,
        **tally.figures(),
        "process_cpu_s": finished.cpu_s,
        "cli_reported_s": float(summary[1]) if summary else None,  # its own timing, no start-up
        "backend_cpu_s": cpu_since(servers, before),
    }


def child_env(servers: Servers) -> dict[str, str]:
    """The emulator's variables, and no AWS config or credential files of the user's."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")}
    env |= servers.env
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


def cpu_since(servers: Servers, before: dict[str, float]) -> dict[str, float]:
    """CPU seconds the emulator and the S3 server used since ``before``."""
    return {k: round(v - before[k], 2) for k, v in servers.cpu().items()}


def summarise(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Fill ``ratios`` and ``goals_met`` from the rows."""
    by_size = {r["size"]: r for r in results["map"] if r.get("status") == "ok"}
    small, large = min(args.sizes), max(args.sizes)
    rss = None
    if small in by_size and large in by_size and small != large:
        rss = by_size[large]["peak_rss_mb"] / by_size[small]["peak_rss_mb"]
    cli = results["cli"]
    speed = None
    if cli and cli.get("status") == "ok" and cli["size"] in by_size:
        speed = by_size[cli["size"]]["results_per_s"] / cli["results_per_s"]
    rows = [*results["map"], *([cli] if cli else [])]
    results["ratios"] = {
        f"map_rss_{large}_vs_{small}": None if rss is None else round(rss, 3),
        "map_vs_cli_throughput": None if speed is None else round(speed, 3),
    }
    results["goals_met"] = {
        "all_outcomes_correct": all(r.get("status") == "ok" for r in rows),
        "map_rss_flat": rss is not None and rss <= RSS_GOAL,
        "cli_throughput_within_1_2x_of_map": speed is not None and speed <= THROUGHPUT_GOAL,
    }


def markdown(results: dict[str, Any]) -> str:
    """The generated part of the docs section."""
    r = results
    lines = [
        f"_Generated by `nox -s bench` on {r['date']}: Python {r['python']}, {r['cpus']} CPUs, "
        f"aiobotocore {r['aiobotocore']}; echo model, latency {r['model_latency_s']} s; "
        f"concurrency {r['concurrency']:,}._",
        "",
    ]
    for name, value in results["ratios"].items():
        lines.append(f"- `{name}`: {'-' if value is None else f'{value:.3f}'}")
    goals = ", ".join(f"`{k}` {'yes' if v else '**no**'}" for k, v in results["goals_met"].items())
    lines += [f"- goals met: {goals}", ""]
    lines += [
        "| run | N | status | wall s | results/s | peak RSS MB | ok | failed | wrong "
        "| missing | duplicated |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rec in [*results["map"], *([results["cli"]] if results["cli"] else [])]:
        status = rec["status"] if rec["status"] == "ok" else f"**failed** {rec.get('failure', '')}"
        counts = " | ".join(
            f"{rec[k]:,}" if k in rec else "-"
            for k in ("ok", "failed", "wrong", "missing", "duplicated")
        )
        label = "`map()`" if rec["kind"] == "map" else "`aiosagemaker batch`"
        lines.append(
            f"| {label} | {rec['size']:,} | {status} | {rec['wall_s']:.1f} "
            f"| {rec['results_per_s'] or 0:,.0f} | {rec['peak_rss_mb']:.0f} | {counts} |"
        )
    return "\n".join(lines) + "\n"


def write_docs(path: Path, results: dict[str, Any]) -> None:
    """Replace the part of ``path`` between the batch markers with the results."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if DOCS_START not in text:
        text = text.rstrip("\n") + f"\n\n{DOCS_HEADING}\n\n{DOCS_START}\n{DOCS_END}\n"
    head, _, rest = text.partition(DOCS_START)
    _, _, tail = rest.partition(DOCS_END)
    path.write_text(f"{head}{DOCS_START}\n{markdown(results)}{DOCS_END}{tail}")


def show(record: dict[str, Any]) -> None:
    """One progress line on stdout."""
    shown = ("kind", "size", "status", "wall_s", "results_per_s", "peak_rss_mb", "failure")
    print(json.dumps({k: record[k] for k in shown if k in record}), flush=True)


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    """Start the servers, run every map() size and the CLI, return the results."""
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "aiobotocore": version("aiobotocore"),
        "aiosagemaker": version("aiosagemaker"),
        "model_latency_s": args.latency,
        "concurrency": args.concurrency,
        "map": [],
        "cli": None,
    }
    sizes = sorted(set(args.sizes) | ({args.cli_n} if args.cli_n else set()))
    with tempfile.TemporaryDirectory(prefix="aiosagemaker-bench-batch-") as tmp:
        servers = Servers(Path(tmp), args.latency, seed=7)
        try:
            servers.start()
            for n in sizes:
                http_json(f"{servers.s3_url}/_bench/reset", "POST")  # forget earlier results
                results["map"].append(run_map(servers, n, args, Path(tmp)))
                show(results["map"][-1])
            if args.cli_n:
                http_json(f"{servers.s3_url}/_bench/reset", "POST")
                results["cli"] = run_cli(servers, args, Path(tmp))
                show(results["cli"])
        finally:
            servers.stop()
    summarise(results, args)
    return results


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["orchestrate", "map"], default="orchestrate")
    parser.add_argument("--n", type=int, help="inputs of one map() run (--role map)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 10000])
    parser.add_argument("--cli-n", type=int, default=10000, help="inputs of the CLI run (0: none)")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--latency", default="0.1", help="emulator model latency (seconds)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--output", type=Path, default=HERE / "batch.json")
    parser.add_argument("--docs", type=Path)
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite --docs from --output, run nothing"
    )
    args = parser.parse_args()
    if args.role == "map":
        print(json.dumps(asyncio.run(map_process(args))), flush=True)
        return
    if args.report_only:
        results = json.loads(args.output.read_text())
    else:
        results = orchestrate(args)
        args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({"ratios": results["ratios"], "goals_met": results["goals_met"]}))
    if args.docs:
        write_docs(args.docs, results)
    if not results["goals_met"]["all_outcomes_correct"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
