"""The waiting engine: shared detection (LIST or GET by cost), budget, deadlines, outages.

Everything runs against the emulator and moto through the recording proxy; faults are
injected at the server side (the proxy), and the S3 outage is a real closed port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from botocore.config import Config

from aiosagemaker import (
    DEFAULT_WAITER_CONFIG,
    AsyncInferenceModelError,
    AsyncInferenceResponse,
    PollingTimeoutError,
    ResultTooLargeError,
    UnexpectedClientError,
    WaiterConfig,
    as_completed,
    wait,
)
from aiosagemaker._clients import LISTED_SIZES
from aiosagemaker._waiting import RequestBudget
from aiosagemaker._waiting._schedule import FINAL_CHECK_GRACE, LAST_CHECK_ALLOWANCE, Schedule
from conftest import BUCKET
from helpers import FAST, make_predictor, raw, until
from s3_fault_proxy import Fault, S3FaultProxy
from test_inline import NEW_FIELDS

pytestmark = pytest.mark.anyio

NO_BOTOCORE_RETRIES = Config(
    retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=5
)


def output_gets(proxy: S3FaultProxy, response: AsyncInferenceResponse) -> int:
    return proxy.count("GET", "/" + response.output_path.removeprefix("s3://"))


# -- schedule and budget ---------------------------------------------------------------------


def test_schedule_first_check_at_start_last_at_the_deadline() -> None:
    import random

    schedule = Schedule(
        WaiterConfig(max_attempts=None, delay=0.4, timeout=1.0), 10.0, random.Random()
    )
    times = [schedule.time(i) for i in range(5)]
    assert times == [10.0, 10.4, pytest.approx(10.8), 11.0, None]
    assert schedule.last == 11.0 and schedule.hard_deadline == 11.0 + FINAL_CHECK_GRACE
    fixed = Schedule(WaiterConfig(3, 2), 0.0, random.Random())
    assert [fixed.time(i) for i in range(4)] == [0.0, 2.0, 4.0, None] and fixed.last == 4.0
    assert fixed.hard_deadline == 4.0 + LAST_CHECK_ALLOWANCE  # no timeout: the SDK's way


def test_schedule_memory_stays_flat_and_jitter_is_drawn_per_check() -> None:
    import itertools
    import random

    config = WaiterConfig(max_attempts=None, delay=1.0, timeout=100_000, jitter=0.5)
    schedule = Schedule(config, 0.0, random.Random(3))
    times = []
    for index in range(5_000):
        due = schedule.time(index)
        assert due is not None
        times.append(due)
        schedule.release(index - 1)
    assert len(schedule._times) <= 3  # a wait's memory does not grow with its checks
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.5 <= gap <= 1.0 for gap in gaps) and len(set(gaps)) > 4_000
    again = Schedule(config, 0.0, random.Random(3))
    assert [again.time(i) for i in range(50)] == times[:50]  # one seed per wait
    plain = Schedule(WaiterConfig(max_attempts=None, delay=1.0, timeout=10), 0.0, random.Random())
    assert [plain.time(i) for i in range(12)] == [float(i) for i in range(11)] + [None]


def test_safety_net_of_an_attempts_only_config_keeps_the_last_checks_allowance() -> None:
    import random

    fixed = Schedule(
        WaiterConfig(3, 0.1), 0.0, random.Random(), first_check=False, hard_limit=False
    )
    assert fixed.hard_deadline == pytest.approx(fixed.last + LAST_CHECK_ALLOWANCE)
    timed = Schedule(WaiterConfig(max_attempts=None, delay=0.1, timeout=1), 0.0, random.Random())
    assert timed.hard_deadline == pytest.approx(1 + FINAL_CHECK_GRACE)


def test_default_waiter_starts_fast_and_keeps_the_sdk_budget() -> None:
    import random

    schedule = Schedule(DEFAULT_WAITER_CONFIG, 0.0, random.Random())
    assert schedule.time(1) == 0.5
    gaps = [schedule.time(i + 1) - schedule.time(i) for i in range(30)]  # type: ignore[operator]
    assert max(gaps) == 15 and schedule.last == 900


def test_budget_halves_on_slowdown_and_recovers() -> None:
    now = [0.0]
    budget = RequestBudget(100, clock=lambda: now[0])
    budget.throttled()
    assert budget.rate == 50
    budget.throttled()  # the same burst: counted once per cooldown
    assert budget.rate == 50 and budget.throttles == 2
    now[0] = 1.5
    budget.throttled()
    assert budget.rate < 30  # halved again (after regaining a little since the cooldown)
    now[0] = 30.0
    budget.try_take()
    assert budget.rate == 100  # additive increase back to the ceiling


# the budget's rate ceiling: test_engine_fake_time.py::test_budget_caps_the_request_rate


# -- detection -------------------------------------------------------------------------------


@pytest.mark.skipif(not NEW_FIELDS, reason="S3OutputPathExtension needs botocore >= 1.42.54")
async def test_many_pending_results_are_found_by_listing(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    async with make_predictor() as predictor:
        responses = [await predictor.predict_async({"output": i, "sleep": 0.5}) for i in range(40)]
        assert all("/aiosagemaker-" in r.output_path for r in responses)
        results = {r.output_path: r.result() async for r in as_completed(responses)}
        stats = predictor.engine_stats
    assert sorted(results.values()) == list(range(40))
    assert stats.lists >= 1 and stats.found_by_list >= 20
    # a result found by listing costs exactly one GET (itself); probing GETs come on top
    assert sum(output_gets(s3_proxy, r) for r in responses) <= 40 + stats.probe_gets
    assert stats.lists + stats.probe_gets < 40 * 2  # far below a GET per pending per check


async def test_few_pending_results_are_polled_by_get(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    async with make_predictor() as predictor:
        assert await predictor.predict({"output": "one", "sleep": 0.2}) == "one"
        stats = predictor.engine_stats
    assert stats.lists == 0 and stats.probe_gets >= 2
    assert s3_proxy.count("GET", "list-type=2") == 0


@pytest.mark.parametrize("detection", ["list", "get"])
async def test_forced_detection(aws_env: dict[str, str], detection: str) -> None:
    async with make_predictor(detection=detection) as predictor:
        responses = [await predictor.predict_async({"output": i, "sleep": 0.2}) for i in range(5)]
        assert [await r for r in responses] == list(range(5))
        stats = predictor.engine_stats
    if detection == "list":
        assert stats.probe_gets == 0 and stats.lists >= 1
    else:
        assert stats.lists == 0 and stats.probe_gets >= 10


async def test_listing_pages_are_read_leanly_with_every_key_and_size(
    aws_env: dict[str, str], s3: Any
) -> None:
    prefix = f"lean/{uuid.uuid4().hex}/"
    names = ["a&b.out", "c<d>.out", "e'f\".out", "ünï cödé.out", "plain.out"]
    for size, name in enumerate(names):
        await s3.put_object(Bucket=BUCKET, Key=prefix + name, Body=b"x" * size)
    async with make_predictor() as predictor:
        await predictor._open()
        transport = predictor._transport
        assert transport is not None
        page = await transport.list_page(BUCKET, prefix)
        assert page.sizes == {prefix + name: size for size, name in enumerate(names)}
        assert page.next_token is None
        raw = await transport.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix, MaxKeys=2)
        assert "Contents" not in raw and len(raw[LISTED_SIZES]) == 2  # botocore parsed no object
        assert raw["IsTruncated"] and raw["NextContinuationToken"]
        rest = await transport.list_page(BUCKET, prefix, raw["NextContinuationToken"])
        assert len(rest.sizes) == 3 and not rest.sizes.keys() & raw[LISTED_SIZES].keys()


async def test_listing_denied_falls_back_to_get(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    s3_proxy.add(Fault("GET", "list-type=2", status=403, code="AccessDenied"))
    async with make_predictor(detection="list") as predictor:
        responses = [await predictor.predict_async({"output": i, "sleep": 0.2}) for i in range(3)]
        assert [await r for r in responses] == [0, 1, 2]
        assert predictor.engine_stats.probe_gets >= 3


async def test_slowdown_on_listing_is_survived_and_slows_the_budget(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    s3_proxy.add(Fault("GET", "list-type=2", status=503, code="SlowDown", times=6))
    async with make_predictor(detection="list", client_config=NO_BOTOCORE_RETRIES) as predictor:
        responses = [await predictor.predict_async({"output": i, "sleep": 0.1}) for i in range(4)]
        assert [await r for r in responses] == [0, 1, 2, 3]
        assert predictor.engine_stats.transient_errors >= 1
        engine = await predictor.response_binding.engine()
        assert engine.budget.throttles >= 1 and engine.budget.rate < engine.budget.ceiling


async def test_a_run_of_slowdowns_on_the_result_is_survived(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    async with make_predictor(client_config=NO_BOTOCORE_RETRIES) as predictor:
        response = await predictor.predict_async({"output": "after 10 SlowDowns"})
        key = response.output_path.removeprefix("s3://")
        s3_proxy.add(Fault("GET", key, status=503, code="SlowDown", times=10))
        config = WaiterConfig(max_attempts=None, delay=0.05, timeout=60)
        assert await response.get_result(config) == "after 10 SlowDowns"


async def test_a_found_result_whose_reads_keep_failing_is_read_again_later(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    # Listed, then every read attempt of one round reset (as in an S3 outage): the wait
    # looks again and reads it after, instead of failing with the result in S3.
    async with make_predictor(detection="list", client_config=NO_BOTOCORE_RETRIES) as predictor:
        response = await predictor.predict_async({"output": "read after the resets"})
        key = response.output_path.removeprefix("s3://")
        resets = s3_proxy.add(Fault("GET", key, reset=True, times=10))
        config = WaiterConfig(max_attempts=None, delay=0.05, timeout=60)
        assert await response.get_result(config) == "read after the resets"
        assert resets.hits == 10
        watched = await predictor.predict_async({"output": "watched"})
        key = watched.output_path.removeprefix("s3://")
        resets = s3_proxy.add(Fault("GET", key, reset=True, times=10))
        settled: list[BaseException | None] = []
        done = anyio.Event()

        def on_settled() -> None:
            settled.append(watched.exception())
            done.set()

        assert await watched.watch(config, on_settled) is not None
        with anyio.fail_after(60):
            await done.wait()
        assert settled == [None]
        assert resets.hits == 10
        assert watched.result() == "watched"


# -- deadlines and outages -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def black_hole() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_timeout_is_a_hard_limit_against_a_hanging_s3(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with black_hole() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
        async with make_predictor() as predictor:
            response = AsyncInferenceResponse(
                predictor, f"s3://{BUCKET}/out/hang.out", f"s3://{BUCKET}/fail/hang.out"
            )
            started = time.monotonic()
            with pytest.raises(PollingTimeoutError) as caught:
                await response.get_result(WaiterConfig(max_attempts=None, delay=0.2, timeout=2))
            waited = time.monotonic() - started
    assert 2 <= waited < 2 + FINAL_CHECK_GRACE + 1.0, waited
    assert caught.value.seconds >= 2


class Switch:
    """A TCP forwarder on a fixed loopback port that can be switched off (connection refused)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: asyncio.Server | None = None
        self.links: list[asyncio.StreamWriter] = []

    async def on(self) -> None:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        async def link(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            self.links += [writer, up_writer]
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        self.server = await asyncio.start_server(link, "127.0.0.1", self.port)

    async def off(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in self.links:
                writer.close()
            self.links.clear()
            await self.server.wait_closed()
            self.server = None


async def test_an_s3_outage_inside_the_budget_is_survived(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    switch = Switch(s3_proxy.url)
    await switch.on()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", switch.url)
    try:
        async with make_predictor(client_config=NO_BOTOCORE_RETRIES) as predictor:
            response = await predictor.predict_async({"output": "after the outage", "sleep": 0.2})
            await switch.off()
            waiting = anyio.Event()
            result: list[Any] = []

            async def waiter() -> None:
                waiting.set()
                result.append(await response.get_result(WaiterConfig(None, 0.1, timeout=30)))

            async with anyio.create_task_group() as group:
                group.start_soon(waiter)
                await waiting.wait()
                with anyio.fail_after(20):
                    while predictor.engine_stats.transient_errors < 3:  # noqa: ASYNC110
                        await anyio.sleep(0.05)  # refused connections seen by the engine
                await switch.on()
            assert result == ["after the outage"]
    finally:
        await switch.off()


async def test_an_outage_longer_than_the_budget_ends_with_its_cause(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    switch = Switch(s3_proxy.url)  # never switched on: connection refused throughout
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", switch.url)
    async with make_predictor(client_config=NO_BOTOCORE_RETRIES) as predictor:
        response = AsyncInferenceResponse(
            predictor, f"s3://{BUCKET}/out/down.out", f"s3://{BUCKET}/fail/down.out"
        )
        with pytest.raises(PollingTimeoutError, match="S3 checks were failing") as caught:
            await response.get_result(WaiterConfig(max_attempts=None, delay=0.1, timeout=1.5))
    assert caught.value.__cause__ is not None


async def test_access_denied_on_a_probe_fails_at_once(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": 1, "sleep": 5})
        key = response.output_path.removeprefix("s3://")
        s3_proxy.add(Fault("GET", key, status=403, code="AccessDenied"))
        started = time.monotonic()
        with pytest.raises(UnexpectedClientError, match="s3:ListBucket"):
            await response
        assert time.monotonic() - started < 5


# -- as_completed and wait -------------------------------------------------------------------


async def test_as_completed_yields_in_completion_order_without_a_task_each(
    aws_env: dict[str, str],
) -> None:
    async with make_predictor() as predictor:
        slow = await predictor.predict_async({"output": "slow", "sleep": 4.0})
        failing = await predictor.predict_async({"fail": "bad row", "sleep": 1.0})
        fast = await predictor.predict_async({"output": "fast", "sleep": 0.1})
        others = [await predictor.predict_async({"output": i, "sleep": 1.0}) for i in range(20)]
        before = len(asyncio.all_tasks())
        order: list[AsyncInferenceResponse] = []
        tasks_while_pending = 0
        async for response in as_completed([slow, failing, fast, *others]):
            order.append(response)
            if len(order) == 1:  # the others still pending
                tasks_while_pending = len(asyncio.all_tasks())
    # yielded as outcomes become known: 0.1 s, then 1 s (the failure among them), then 4 s
    assert order.index(fast) < order.index(failing) < order.index(slow)
    assert fast.result() == "fast" and slow.result() == "slow"
    assert isinstance(failing.exception(), AsyncInferenceModelError)
    with pytest.raises(AsyncInferenceModelError, match="bad row"):
        failing.result()
    assert sorted(r.result() for r in others) == list(range(20))
    assert tasks_while_pending < before + 10  # no task per pending response


async def test_a_settled_watch_holds_nothing_until_its_deadline(aws_env: dict[str, str]) -> None:
    """The hard-deadline timer of a watch goes with it: a yielded result can be freed."""
    import gc
    import weakref

    async with make_predictor(waiter_config=WaiterConfig(max_attempts=None, timeout=900)) as p:
        responses = [await p.predict_async({"output": i}) for i in range(5)]
        refs = [weakref.ref(r) for r in responses]
        async for response in as_completed(responses):
            assert response.exception() is None
        del responses, response

        def freed() -> bool:
            gc.collect()
            return all(ref() is None for ref in refs)

        await until(freed)  # once checks under way end; no timer keeps them for 15 minutes


async def test_as_completed_timeout_leaves_the_rest_awaitable(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        quick = await predictor.predict_async({"output": "quick"})
        late = await predictor.predict_async({"output": "late", "sleep": 1.5})
        seen = []

        async def consume() -> None:
            async for response in as_completed([quick, late], timeout=0.8):
                seen.append(response)

        with pytest.raises(PollingTimeoutError, match="1 of 2 responses still pending"):
            await consume()
        assert seen == [quick]
        assert await late.get_result(FAST) == "late"


async def test_wait_first_completed_and_all(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        quick = await predictor.predict_async({"output": 1})
        late = await predictor.predict_async({"output": 2, "sleep": 1.0})
        done, pending = await wait([quick, late], return_when="FIRST_COMPLETED")
        assert done == {quick} and pending == {late}
        done, pending = await wait([quick, late])
        assert done == {quick, late} and not pending
        with pytest.raises(ValueError, match="return_when"):
            await wait([quick], return_when="SOMETIMES")  # type: ignore[arg-type]


# -- bounded bodies ----------------------------------------------------------------------------


async def test_a_large_failure_file_is_cut_and_named(aws_env: dict[str, str], s3: Any) -> None:
    text = "x" * (200 * 1024)
    await s3.put_object(Bucket=BUCKET, Key="fail/huge.out", Body=text.encode())
    async with make_predictor() as predictor:
        response = AsyncInferenceResponse(
            predictor, f"s3://{BUCKET}/out/none.out", f"s3://{BUCKET}/fail/huge.out"
        )
        with pytest.raises(AsyncInferenceModelError) as caught:
            await response
    message = str(caught.value)
    assert len(message) < 70 * 1024
    assert "cut at 65,536 bytes" in message and f"s3://{BUCKET}/fail/huge.out" in message


async def test_results_over_max_result_bytes_are_refused_before_reading(
    aws_env: dict[str, str], tmp_path: Any
) -> None:
    payload = bytes(5000)
    async with make_predictor(max_result_bytes=1000) as predictor:
        response = await predictor.predict_async(raw(payload))
        with pytest.raises(ResultTooLargeError, match="download") as caught:
            await response
        assert caught.value.size == 5000 and caught.value.output_path == response.output_path
        target = tmp_path / "big.bin"
        await response.download(target, FAST)
    assert await anyio.Path(target).read_bytes() == payload


async def test_download_leaves_no_partial_file(aws_env: dict[str, str], tmp_path: Any) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"fail": "no file for you"})
        with pytest.raises(AsyncInferenceModelError):
            await response.download(tmp_path / "out.bin", FAST)
        good = await predictor.predict_async(raw(b"abc"))
        await good.download(tmp_path / "good.bin", FAST)
    assert sorted([p.name async for p in anyio.Path(tmp_path).iterdir()]) == ["good.bin"]


async def test_default_wait_needs_no_config(aws_env: dict[str, str]) -> None:
    async with make_predictor(waiter_config=DEFAULT_WAITER_CONFIG) as predictor:
        assert predictor.waiter_config is DEFAULT_WAITER_CONFIG
        response = await predictor.predict_async({"output": "soon", "sleep": 0.1})
        with anyio.fail_after(10):  # the SDK's fixed 15 s delay would miss this by far
            assert await response == "soon"


async def test_a_large_group_between_its_checks_is_not_forgotten(aws_env: dict[str, str]) -> None:
    # the extra look of a large group comes before any probe is due: the scheduler must
    # still wake up for the probes' own checks afterwards
    config = WaiterConfig(max_attempts=None, delay=1.0, timeout=30)
    async with make_predictor(waiter_config=config) as predictor:
        responses = [await predictor.predict_async({"output": i, "sleep": 0.4}) for i in range(30)]
        with anyio.fail_after(15):
            assert [await r for r in responses] == list(range(30))
