"""The hot path: found results read ahead of queued uploads, invokes in flight bounded, and
the batch command's start-up objects kept out of garbage collections."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from botocore.config import Config

from aiosagemaker._cli._batch_job import BatchJob
from conftest import BUCKET, GATES
from helpers import FAST, make_predictor, until
from s3_fault_proxy import Fault, S3FaultProxy

pytestmark = pytest.mark.anyio


async def test_a_listed_result_is_read_while_uploads_hold_every_shared_slot(
    aws_env: dict[str, str],
) -> None:
    # detection="list": the LIST finds the key (no body), so the result needs its own GET
    async with make_predictor(max_concurrency=2, detection="list", inline=False) as predictor:
        response = await predictor.predict_async({"output": "found"})
        transport = predictor._transport
        assert transport is not None
        uploads = [object() for _ in range(int(transport.limiter.total_tokens))]
        for upload in uploads:  # every shared slot taken, as by uploads not yet sent
            await transport.limiter.acquire_on_behalf_of(upload)
        try:
            with anyio.fail_after(60):
                assert await response.get_result(FAST) == "found"
        finally:
            for upload in uploads:
                transport.limiter.release_on_behalf_of(upload)
        assert predictor.engine_stats.found_by_list >= 1


async def test_invokes_in_flight_are_bounded_by_max_concurrency(
    aws_env: dict[str, str], runtime_proxy: S3FaultProxy
) -> None:
    # the pool (10) would let 6 invokes through at once; max_concurrency=2 bounds them
    hold = Fault("POST", "async-invocations", after_forward="hang", hang=5.0, times=2)
    runtime_proxy.add(hold)
    config = Config(max_pool_connections=10)
    async with make_predictor(max_concurrency=2, client_config=config) as predictor:
        async with anyio.create_task_group() as tasks:
            for index in range(6):
                tasks.start_soon(predictor.predict_async, {"output": index})
            await until(lambda: predictor._invoker.limiter is not None)
            invokes = predictor._invoker.limiter
            assert invokes is not None
            # two held at the server, four waiting their turn (uploaded first on botocore 1.40)
            await until(lambda: hold.hits == 2 and invokes.waiting == 4, deadline=30)
            assert runtime_proxy.count("POST", "async-invocations") == 2
        assert runtime_proxy.count("POST", "async-invocations") == 6


def test_the_batch_command_keeps_start_up_objects_out_of_gc_while_it_runs(
    aws_env: dict[str, str], tmp_path: Path, gate: Callable[[], str]
) -> None:
    # a plain test: the command runs in a process of its own, where blocking calls are fine
    name = gate()
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"gate": name, "output": i}) + "\n" for i in range(3)))
    job = BatchJob(
        "scripted",
        inputs,
        tmp_path / "out.jsonl",
        tmp_path / "out.jsonl.state.db",
        bucket=BUCKET,
        waiter_config=FAST,
        progress=False,
        freeze_gc=True,
    )

    async def run() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(job.run)
            try:
                await until(lambda: gc.get_freeze_count() > 0, deadline=60)  # predictor open
            finally:
                GATES[name].open()

    assert gc.get_freeze_count() == 0
    anyio.run(run)
    assert gc.get_freeze_count() == 0  # unfrozen when the run ends
    assert job.ok == 3


async def test_a_predict_async_queued_for_an_invoke_slot_holds_few_objects(
    aws_env: dict[str, str], runtime_proxy: S3FaultProxy
) -> None:
    # 10,000 calls may queue for the invoke slots: each must hold little while it waits (48
    # objects with anyio.CapacityLimiter and the call chain built before queueing, now 34)
    queued = 200
    hold = Fault("POST", "async-invocations", after_forward="hang", hang=10.0, times=1)
    async with make_predictor(max_concurrency=1, telemetry=False) as predictor:
        if not predictor._supports("Body"):
            pytest.skip("botocore < 1.43.29: payloads are uploaded first, not sent inline")
        await predictor.predict_async({"output": 0})  # warm
        runtime_proxy.add(hold)
        gc.collect()
        before = len(gc.get_objects())
        async with anyio.create_task_group() as tasks:
            for index in range(queued + 1):
                tasks.start_soon(predictor.predict_async, {"output": index})
            invokes = predictor._invoker.limiter
            assert invokes is not None
            await until(lambda: hold.hits == 1 and invokes.waiting == queued, deadline=30)
            gc.collect()
            per_request = (len(gc.get_objects()) - before) / queued
    assert per_request < 44, f"{per_request:.1f} objects per queued predict_async"
