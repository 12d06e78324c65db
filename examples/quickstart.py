"""Quickstart: submit async inferences and await their results.

With no arguments it starts the embedded local emulator (no AWS account needed) and runs the
built-in ``demo`` model; with ``--endpoint NAME`` it uses your real endpoint through the
standard AWS configuration (credentials, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_*``).

    python examples/quickstart.py
    python examples/quickstart.py --endpoint my-async-endpoint --bucket my-input-bucket
"""

from __future__ import annotations

import argparse
import asyncio
import os
from contextlib import AsyncExitStack

from aiosagemaker import (
    AsyncInferenceModelError,
    AsyncPredictor,
    JSONDeserializer,
    JSONSerializer,
    WaiterConfig,
)


async def run(endpoint: str, bucket: str | None) -> None:
    waiter = WaiterConfig(max_attempts=120, delay=0.25, backoff=1.5, max_delay=15)
    async with AsyncPredictor(
        endpoint,
        serializer=JSONSerializer(),
        deserializer=JSONDeserializer(),
        default_bucket=bucket,
        waiter_config=waiter,
    ) as predictor:
        response = await predictor.predict_async({"inputs": [1, 2, 3, 4]})
        print(f"submitted {response.inference_id} -> {response.output_path}")
        print("result:", await response)

        # Many requests in flight on one event loop, no thread each.
        batch = [{"inputs": list(range(n))} for n in range(1, 6)]
        results = await asyncio.gather(*(predictor.predict(item) for item in batch))
        print("sums:", [r["sum"] for r in results])

        try:
            await predictor.predict({"inputs": "not a list of numbers"})
        except AsyncInferenceModelError as error:
            print(f"model error (failure file {error.failure_path}):\n  {error}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="a real async endpoint (default: local emulator)")
    parser.add_argument("--bucket", help="bucket for uploaded inputs (default: SDK default)")
    args = parser.parse_args()
    async with AsyncExitStack() as stack:
        endpoint = args.endpoint
        if endpoint is None:
            from aiosagemaker.local import EndpointSpec, LocalEndpoint

            local = await stack.enter_async_context(
                LocalEndpoint(
                    endpoints=[EndpointSpec(name="demo", model="aiosagemaker.local.models:demo")]
                )
            )
            os.environ.update(local.env)
            print(f"local emulator: runtime {local.runtime_url}, S3 {local.s3_url}")
            endpoint = "demo"
        await run(endpoint, args.bucket)


if __name__ == "__main__":
    asyncio.run(main())
