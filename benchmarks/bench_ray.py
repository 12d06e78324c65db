"""Ray benchmark: ``AsyncInferenceMapper`` on 1 and 2 actors beside single-process ``map()``.

Starts the in-memory S3 server and the local emulator (echo model, fixed model latency, 10 x
1,000 invocation slots), each in its own process on 127.0.0.1, as ``bench_batch.py`` does.
Then, against that one emulator, over ``--n`` inputs (10,000 by default):

1. ``map``: ``bench_batch.py --role map`` in a fresh process (one warm-up request; the timing
   and CPU are its own, measured around ``map()``);
2. ``ray``: for every ``--actors`` k, a fresh driver process starts a local Ray (loopback, no
   dashboard, ``num_cpus=max(2, k)``), runs ``ray.data.range(10)`` once to load Ray Data,
   then ``from_items(...).map_batches(AsyncInferenceMapper, compute=ActorPoolStrategy(size=k),
   batch_size=--batch-size)`` and ``take_all()``. Its wall time covers the dataset only
   (actor start included); its CPU is that of the whole Ray process tree over the same span
   (driver, GCS, raylet, workers; exited processes through their parents' children times).

The total in flight is ``--concurrency`` in every run (divided among the actors). Every outcome
is checked against what the echo model returns. Reported: wall time, results per second, CPU
seconds and CPU milliseconds per result, ok / failed / wrong / missing / duplicated, and the
backend's CPU. Writes ``--output`` (JSON). Exits 1 if any outcome was wrong, missing,
duplicated or failed. Ray competes for the same cores as the emulator: on a small machine the
figures show Ray's overhead more than its scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench_batch import Tally, child_env, cpu_since, failure, payload, row, run_map, run_process
from bench_clients import BUCKET, CLOCK_TICKS, ENDPOINT, Servers, http_json

HERE = Path(__file__).resolve().parent


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and its descendants, with the children they have reaped."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(value) for value in fields[11:15]) / CLOCK_TICKS
    members, grown = {root}, True
    while grown:
        more = {pid for pid, parent in parents.items() if parent in members} - members
        grown = bool(more)
        members |= more
    return sum(times.get(pid, 0.0) for pid in members)


def ray_process(args: argparse.Namespace) -> dict[str, Any]:
    """One Ray Data run over ``args.n`` inputs on ``args.actors`` actors; the figures."""
    import ray

    from aiosagemaker import JSONDeserializer, JSONSerializer, WaiterConfig
    from aiosagemaker.ray import AsyncInferenceMapper

    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    ray.init(
        num_cpus=max(2, args.actors),
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        runtime_env={"env_vars": env},
        logging_level="WARNING",
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        ray.data.range(10).materialize()  # Ray Data loaded, its first tasks run
        items = [{"id": i, "data": payload(i)} for i in range(args.n)]
        dataset = ray.data.from_items(items).map_batches(
            AsyncInferenceMapper,
            fn_constructor_kwargs={
                "endpoint_name": ENDPOINT,
                "serializer": JSONSerializer(),
                "deserializer": JSONDeserializer(),
                "default_bucket": BUCKET,
                "inline": "auto",  # as bench_batch's map() sends its payloads
                "waiter_config": WaiterConfig(max_attempts=None, delay=0.2, timeout=600),
                "concurrency": max(1, args.concurrency // args.actors),
                "num_actors": args.actors,
            },
            compute=ray.data.ActorPoolStrategy(size=args.actors),
            batch_size=args.batch_size,
        )
        cpu, started = tree_cpu(os.getpid()), time.monotonic()
        rows = dataset.take_all()
        wall, cpu = time.monotonic() - started, tree_cpu(os.getpid()) - cpu
    finally:
        ray.shutdown()
    tally = Tally(args.n)
    for outcome in rows:
        result = None if outcome["result"] is None else json.loads(outcome["result"])
        tally.add(int(outcome["id"]), outcome["error_message"], result)
    return {"wall_s": wall, "cpu_s": round(cpu, 2), **tally.figures()}


def run_ray(
    servers: Servers, actors: int, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """The Ray driver over ``args.n`` inputs on ``actors`` actors, in a fresh process."""
    command = [sys.executable, __file__, "--role", "ray", "--n", str(args.n)]
    command += ["--actors", str(actors), "--concurrency", str(args.concurrency)]
    command += ["--batch-size", str(args.batch_size)]
    env = child_env(servers) | {"RAY_USAGE_STATS_ENABLED": "0"}
    before = servers.cpu()
    finished = run_process(command, env, args.timeout, workdir)
    lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
    if finished.returncode != 0 or not lines:
        record = row("ray", args.n, args.concurrency, finished.wall_s, finished.hwm_kb)
        why = failure(finished, args.timeout, workdir)
        return {**record, "actors": actors, "status": "failed", "failure": why}
    figures = json.loads(lines[-1])
    return {
        **row("ray", args.n, args.concurrency, figures.pop("wall_s"), finished.hwm_kb),
        "actors": actors,
        "driver_process_s": round(finished.wall_s, 3),
        **per_result(figures.pop("cpu_s"), args.n),
        **figures,
        "backend_cpu_s": cpu_since(servers, before),
    }


def per_result(cpu_s: float, n: int) -> dict[str, float]:
    return {"client_cpu_s": cpu_s, "client_cpu_ms_per_result": round(1000 * cpu_s / n, 3)}


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    """Start the servers, run map() and Ray with each actor count, return the results."""
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "aiobotocore": version("aiobotocore"),
        "ray": version("ray"),
        "aiosagemaker": version("aiosagemaker"),
        "model_latency_s": args.latency,
        "n": args.n,
        "concurrency_total": args.concurrency,
        "batch_size": args.batch_size,
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="aiosagemaker-bench-ray-") as tmp:
        servers = Servers(Path(tmp), args.latency, seed=7)
        try:
            servers.start()
            http_json(f"{servers.s3_url}/_bench/reset", "POST")
            single = run_map(servers, args.n, args, Path(tmp))
            if "cpu_s" in single:
                single |= per_result(single["cpu_s"], args.n)
            results["runs"].append(single)
            show(single)
            for actors in args.actors:
                http_json(f"{servers.s3_url}/_bench/reset", "POST")
                results["runs"].append(run_ray(servers, actors, args, Path(tmp)))
                show(results["runs"][-1])
        finally:
            servers.stop()
    runs = results["runs"]
    base = runs[0].get("results_per_s") if runs[0].get("status") == "ok" else None
    results["throughput_vs_map"] = {
        f"ray_{r['actors']}_actors": round(r["results_per_s"] / base, 3)
        for r in runs[1:]
        if base and r.get("status") == "ok"
    }
    results["all_outcomes_correct"] = all(r.get("status") == "ok" for r in runs)
    return results


def show(record: dict[str, Any]) -> None:
    """One progress line on stdout."""
    shown = ("kind", "actors", "size", "status", "wall_s", "results_per_s", "client_cpu_s")
    print(json.dumps({k: record[k] for k in (*shown, "failure") if k in record}), flush=True)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["orchestrate", "ray"], default="orchestrate")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=1000, help="in flight, in total")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--latency", default="0.1", help="emulator model latency (seconds)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--output", type=Path, default=HERE / "ray.json")
    args = parser.parse_args()
    if args.role == "ray":
        args.actors = args.actors[0]
        print(json.dumps(ray_process(args)), flush=True)
        return
    results = orchestrate(args)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: results[k] for k in ("throughput_vs_map", "all_outcomes_correct")}))
    if not results["all_outcomes_correct"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
