"""The event loop keeps running while waiting; nothing outlives a call; cancellation is clean."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from aiosagemaker import (
    AsyncInferenceModelError,
    PollingTimeoutError,
    WaiterConfig,
)
from helpers import FAST, make_predictor, until
from s3_fault_proxy import S3FaultProxy

pytestmark = pytest.mark.anyio


def established_to(port: int) -> int:
    """Client-side TCP connections of this machine in state ESTABLISHED to ``port``."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as file:
                rows = file.readlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[3] == "01":
                count += 1
    return count


def other_tasks() -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return {task for task in asyncio.all_tasks() if task is not current}


async def test_event_loop_keeps_running_while_waiting(aws_env: dict[str, str]) -> None:
    """Other tasks run while a wait is pending (blockbuster, active on every async test,
    fails any blocking call; this checks the loop is free between the checks)."""
    ticks = 0
    stop = anyio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not stop.is_set():
            await anyio.sleep(0.01)
            ticks += 1

    async with make_predictor() as predictor, anyio.create_task_group() as group:
        group.start_soon(heartbeat)
        response = await predictor.predict_async({"sleep": 1.0, "output": "done"})
        before = ticks
        assert await response.get_result(WaiterConfig(max_attempts=1000, delay=0.05)) == "done"
        during = ticks - before
        stop.set()
    # A waiter that blocked the loop for the model's second would let it tick once or twice;
    # a loaded machine slows the ticks down but still lets dozens through.
    assert during >= 5, f"the heartbeat ticked only {during} times during a 1 s wait"


@pytest.mark.parametrize("outcome", ["success", "model failure", "timeout", "cancellation"])
async def test_nothing_is_left_behind(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy, outcome: str
) -> None:
    port = int(s3_proxy.url.rsplit(":", 1)[1])
    predictor = make_predictor()
    await predictor.__aenter__()
    before = other_tasks()
    payload = {
        "success": {"output": 1},
        "model failure": {"fail": "bad"},
        "timeout": {"sleep": 30},
        "cancellation": {"sleep": 30},
    }[outcome]
    response = await predictor.predict_async(payload)
    if outcome == "success":
        assert await response == 1
    elif outcome == "model failure":
        with pytest.raises(AsyncInferenceModelError):
            await response
    elif outcome == "timeout":
        with pytest.raises(PollingTimeoutError):
            await response.get_result(WaiterConfig(max_attempts=3, delay=0.05))
    else:
        with anyio.move_on_after(0.3) as scope:
            await response.get_result(WaiterConfig(max_attempts=1000, delay=0.01))
        assert scope.cancelled_caught
    # The engine's checks for this response end once it is unregistered (on the next loop turns).
    await until(lambda: other_tasks() <= before)
    await predictor.close()
    await until(lambda: established_to(port) == 0)


async def test_cancel_then_await_again(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"sleep": 0.6, "output": "eventually"})
        with anyio.move_on_after(0.1):
            await response
        assert not response.done()
        assert await response.get_result(FAST) == "eventually"


async def test_many_concurrent_requests_share_one_predictor(aws_env: dict[str, str]) -> None:
    results: dict[int, Any] = {}
    async with make_predictor(max_concurrency=16) as predictor:

        async def one(i: int) -> None:
            results[i] = await predictor.predict({"output": i, "sleep": 0.2})

        async with anyio.create_task_group() as group:
            for i in range(60):
                group.start_soon(one, i)
    assert results == {i: i for i in range(60)}


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_tight_concurrency_limits_do_not_deadlock(
    aws_env: dict[str, str], limit: int
) -> None:
    async with make_predictor(max_concurrency=limit) as predictor:

        async def one(i: int) -> None:
            assert await predictor.predict({"output": i, "sleep": 0.1}) == i

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for i in range(12):
                    group.start_soon(one, i)
