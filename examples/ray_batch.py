"""Ray Data: a dataset column through an async endpoint, from a pool of actors.

With no ``--endpoint`` it starts the embedded local emulator (no AWS account needed) and a
local Ray instance on 127.0.0.1, and runs the built-in ``demo`` model; one input is one the
model refuses, so its row comes back with an error instead of failing the job. With
``--endpoint NAME`` it uses your real endpoint through the standard AWS configuration.

    pip install '.[local,ray]'
    python examples/ray_batch.py
    python examples/ray_batch.py --rows 10000 --actors 4 --endpoint my-async-endpoint
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from typing import Any

import ray

from aiosagemaker import JSONDeserializer, JSONSerializer, WaiterConfig
from aiosagemaker.ray import AsyncInferenceMapper


def run(endpoint: str, rows: int, actors: int, env: dict[str, str]) -> None:
    # The actors are processes of their own: they get the AWS settings through the runtime_env
    # (a real cluster would rather use the nodes' instance role).
    ray.init(
        num_cpus=actors,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        runtime_env={"env_vars": env},
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        items: list[dict[str, Any]] = [
            {"id": i, "data": {"inputs": [i, i + 1, i + 2]}} for i in range(rows)
        ]
        items[7]["data"] = {"inputs": []}  # the demo model refuses an empty list
        waiter = WaiterConfig(max_attempts=None, delay=0.25, backoff=1.5, max_delay=5, timeout=600)
        dataset = ray.data.from_items(items).map_batches(
            AsyncInferenceMapper,
            fn_constructor_kwargs={
                "endpoint_name": endpoint,
                "serializer": JSONSerializer(),
                "deserializer": JSONDeserializer(),
                "waiter_config": waiter,
                "concurrency": 64,
                "num_actors": actors,
            },
            compute=ray.data.ActorPoolStrategy(size=actors),
            batch_size=100,
        )
        done = sorted(dataset.take_all(), key=lambda row: row["id"])
    finally:
        ray.shutdown()
    failed = [row for row in done if row["error_type"] is not None]
    print(f"rows: {len(done)}, ok: {len(done) - len(failed)}, failed: {len(failed)}")
    print("row 3:", json.loads(done[3]["result"]))
    for row in failed:
        print(f"row {row['id']} failed: {row['error_type']}: {row['error_message']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="a real async endpoint (default: local emulator)")
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--actors", type=int, default=2)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        endpoint, env = args.endpoint, {}
        if endpoint is None:
            from aiosagemaker.local import EndpointSpec, LocalEndpoint

            local = stack.enter_context(
                LocalEndpoint(
                    endpoints=[EndpointSpec(name="demo", model="aiosagemaker.local.models:demo")]
                )
            )
            print(f"local emulator: runtime {local.runtime_url}, S3 {local.s3_url}")
            endpoint, env = "demo", dict(local.env)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        run(endpoint, args.rows, args.actors, env)


if __name__ == "__main__":
    main()
