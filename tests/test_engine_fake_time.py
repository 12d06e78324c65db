"""The waiting engine's scheduling on virtual time: exact request counts, deterministically.

The engine runs against :class:`~fakes.FakeS3` (objects in a dict, GETs and LISTs counted)
and :class:`~fakes.FakeClock` (time jumps to the next deadline whenever the engine is idle),
so neither a loaded machine nor the size of a delay changes what is counted.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError

from aiosagemaker import (
    AsyncInferenceResponse,
    AsyncPredictor,
    JSONDeserializer,
    PollingTimeoutError,
    WaiterConfig,
)
from aiosagemaker._s3 import S3Uri, read_all
from aiosagemaker._transport import Transport
from aiosagemaker._waiting import (
    Completed,
    Failed,
    RequestBudget,
    ResultLocations,
    WaitingEngine,
)
from aiosagemaker._waiting._collect import MAX_SETTLERS
from aiosagemaker._waiting._pending import FIRST_CHECK_HOLD
from fakes import FakeClock, FakeDetector, FakeS3

OUTPUT = "s3://bucket/out/one.out"
FAILURE = "s3://bucket/fail/one.out"

pytestmark = pytest.mark.anyio


def locations(output: str = OUTPUT, failure: str | None = FAILURE) -> ResultLocations:
    return ResultLocations(
        S3Uri.parse(output), None if failure is None else S3Uri.parse(failure), "id-1"
    )


@asynccontextmanager
async def engine_on(
    s3: FakeS3, clock: FakeClock, *, rate: float = 200.0, **kwargs: Any
) -> AsyncIterator[WaitingEngine]:
    async with clock.running(), anyio.create_task_group() as background:
        budget = RequestBudget(rate, clock=clock)
        engine = WaitingEngine(s3, budget, clock=clock, start_soon=background.start_soon, **kwargs)
        engine.start()
        try:
            yield engine
        finally:
            await engine.aclose()


async def test_the_last_attempt_always_looks_for_a_failure() -> None:
    s3, clock = FakeS3(), FakeClock()
    s3.put_object(FAILURE, b"bad input")
    async with engine_on(s3, clock, failure_every=3) as engine:
        outcome = await engine.wait(
            locations(), WaiterConfig(max_attempts=2, delay=0.05), read_all, max_bytes=None
        )
    assert isinstance(outcome, Failed) and "bad input" in outcome.message
    # attempts 1 and 2 are not regular failure probes; the last attempt looks anyway
    assert s3.gets[OUTPUT] == 2  # the first check, and the output-wins GET of the failure
    assert s3.gets[FAILURE] == 1


async def test_failure_probes_can_be_thinned_out() -> None:
    s3, clock = FakeS3(), FakeClock()
    async with engine_on(s3, clock, failure_every=3) as engine:
        with pytest.raises(PollingTimeoutError) as caught:
            await engine.wait(
                locations(), WaiterConfig(max_attempts=7, delay=0.02), read_all, max_bytes=None
            )
    assert caught.value.attempts == 7
    assert s3.gets[OUTPUT] == 7
    assert s3.gets[FAILURE] == 3  # attempts 3 and 6, and the last (7)


@pytest.mark.parametrize(("delay", "seconds"), [(0.02, 0.16), (5.0, 20.0), (60.0, 240.0)])
async def test_one_get_per_location_per_attempt(delay: float, seconds: float) -> None:
    s3, clock = FakeS3(), FakeClock()
    async with engine_on(s3, clock) as engine:
        with pytest.raises(PollingTimeoutError) as caught:
            await engine.wait(
                locations(), WaiterConfig(max_attempts=5, delay=delay), read_all, max_bytes=None
            )
    assert caught.value.attempts == 5
    # the time waited, on the engine's clock: four delays, or for delays under FIRST_BATCH
    # the last check held back to be batched (0.1 s after the check before it)
    assert caught.value.seconds == seconds
    assert s3.gets == {OUTPUT: 5, FAILURE: 5}
    assert sum(s3.lists.values()) == 0


async def test_a_result_that_arrives_is_read_from_the_probing_get() -> None:
    s3, clock = FakeS3(), FakeClock()
    async with engine_on(s3, clock) as engine:
        config = WaiterConfig(max_attempts=None, delay=1.0, backoff=1.0, timeout=60)
        entry_started = clock.now()
        async with _arrives_at(s3, clock, entry_started + 3.5, OUTPUT, b"done"):
            outcome = await engine.wait(locations(), config, read_all, max_bytes=None)
    assert isinstance(outcome, Completed) and outcome.fetched.value == b"done"
    # checks at 0, 1, 2, 3 miss; the one at 4 finds it and its bytes are the result
    assert s3.gets == {OUTPUT: 5, FAILURE: 4}  # no failure GET once the output is found
    assert clock.elapsed == 4.0


async def test_a_timeout_ends_the_wait_at_its_deadline_on_virtual_time() -> None:
    s3, clock = FakeS3(), FakeClock()
    async with engine_on(s3, clock) as engine:
        config = WaiterConfig(max_attempts=None, delay=10.0, backoff=1.0, timeout=3600)
        with pytest.raises(PollingTimeoutError) as caught:
            await engine.wait(locations(), config, read_all, max_bytes=None)
    # an hour of waiting in virtual time: one check per 10 s, the last at the deadline
    assert caught.value.seconds == 3600 and caught.value.attempts == 361
    assert s3.gets == {OUTPUT: 361, FAILURE: 361}


async def test_a_watch_expires_at_its_hard_deadline_by_the_engine_clock() -> None:
    s3, clock = FakeS3(), FakeClock()
    done: list[BaseException | None] = []
    finished = anyio.Event()
    async with engine_on(s3, clock) as engine:
        config = WaiterConfig(max_attempts=None, delay=30.0, backoff=1.0, timeout=300)

        def on_done(outcome: Any, error: BaseException | None) -> None:
            done.append(error)
            finished.set()

        engine.watch(locations(), config, read_all, max_bytes=None, on_done=on_done)
        with clock.move_on_at(clock.now() + 1000):
            await finished.wait()
    assert len(done) == 1 and isinstance(done[0], PollingTimeoutError)
    assert clock.elapsed == 300  # no loop timer: the engine's own clock ended it
    assert s3.gets == {OUTPUT: 11, FAILURE: 11}


async def test_budget_caps_the_request_rate() -> None:
    clock = FakeClock()
    budget = RequestBudget(50, burst_seconds=0.1, clock=clock)
    async with clock.running():
        for _ in range(30):
            await budget.take()
    # 5 burst tokens, then 25 at 50/s: 0.5 s of virtual time
    assert clock.elapsed == pytest.approx(0.5, abs=1e-6)


@asynccontextmanager
async def _arrives_at(
    s3: FakeS3, clock: FakeClock, at: float, uri: str, body: bytes
) -> AsyncIterator[None]:
    """Put ``body`` at ``uri`` when the virtual clock reaches ``at``."""

    async def arrive() -> None:
        await clock.sleep_until(at)
        s3.put_object(uri, body)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(arrive)
        yield


async def test_a_predictor_sends_its_requests_through_a_given_transport() -> None:
    s3 = FakeS3()
    s3.put_object(OUTPUT, b'{"answer": 42}', "application/json")
    transport = Transport(s3=s3, runtime=None)
    async with AsyncPredictor(
        "scripted", deserializer=JSONDeserializer(), transport=transport
    ) as predictor:
        response = AsyncInferenceResponse(predictor, OUTPUT, FAILURE)
        assert await response.get_result(WaiterConfig(max_attempts=3, delay=0.01)) == {"answer": 42}
    assert s3.gets[OUTPUT] >= 1  # found in memory: no aiobotocore client was made


def test_transport_must_be_a_transport() -> None:
    with pytest.raises(TypeError, match="transport must be"):
        AsyncPredictor("scripted", transport=FakeS3)  # type: ignore[arg-type]


async def test_a_detector_resolves_waits_and_s3_checks_become_a_safety_net() -> None:
    s3, clock, detector = FakeS3(), FakeClock(), FakeDetector(safety_interval=30.0)
    async with engine_on(s3, clock, detector=detector) as engine:
        config = WaiterConfig(max_attempts=None, delay=1.0, backoff=1.0, timeout=3600)

        async def announce_later() -> None:
            await clock.sleep_until(clock.now() + 95)
            detector.announce(OUTPUT, b"pushed")

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(announce_later)
            outcome = await engine.wait(locations(), config, read_all, max_bytes=None)
    assert isinstance(outcome, Completed) and outcome.fetched.value == b"pushed"
    assert clock.elapsed == 95
    # safety-net checks at 30, 60 and 90 s instead of one a second; the body came inline
    assert s3.gets == {OUTPUT: 3, FAILURE: 3}
    assert detector.stats.safety_checks == 3 and detector.stats.inline_results == 1
    assert engine.stats.found_by_notification == 1
    assert detector.started == 1 and detector.closed == 1 and not detector.entries
    # the engine knows no SQS: the detector is all it has
    assert engine.listener is detector


def _many(count: int, prefix: str = "many") -> list[ResultLocations]:
    return [
        ResultLocations(
            S3Uri.parse(f"s3://bucket/out/{prefix}/{i}.out"),
            S3Uri.parse(f"s3://bucket/fail/{prefix}/{i}.out"),
            f"id-{i}",
        )
        for i in range(count)
    ]


_PER_WAIT_MODULES = {"aiosagemaker._waiting._registry", "aiosagemaker._waiting._schedule"}
"""Where the classes of what the engine keeps per wait live (entries, cohorts, schedules)."""


def _engine_garbage() -> list[object]:
    """What a full collection finds unreachable among what the engine keeps per wait."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return [thing for thing in gc.garbage if type(thing).__module__ in _PER_WAIT_MODULES]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_resolved_waits_leave_no_reference_cycles() -> None:
    gc.collect()  # whatever earlier tests left
    gc.disable()  # keep the cycle collector from freeing cycles along the way
    try:
        outcomes = await _resolve_many(waited=150, watched=150)
        assert _engine_garbage() == []  # nothing of theirs was left to the cycle collector
    finally:
        gc.enable()
    assert len(outcomes) == 300
    assert all(isinstance(o, Completed | Failed) for o in outcomes)


async def _resolve_many(waited: int, watched: int) -> list[Any]:
    """Wait for and watch results that arrive after a few checks; what they ended with."""
    s3, clock = FakeS3(), FakeClock()
    config = WaiterConfig(max_attempts=None, delay=1.0, backoff=1.0, timeout=60)
    outcomes: list[Any] = []
    finished = anyio.Event()
    total = waited + watched

    def on_done(outcome: Any, error: BaseException | None) -> None:
        outcomes.append(outcome if error is None else error)
        if len(outcomes) == total:
            finished.set()

    async def wait_for(engine: WaitingEngine, where: ResultLocations) -> None:
        on_done(await engine.wait(where, config, read_all, max_bytes=None), None)

    async with engine_on(s3, clock, detection="list") as engine:
        async with anyio.create_task_group() as tasks:
            for where in _many(waited, "waited"):
                tasks.start_soon(wait_for, engine, where)
            for where in _many(watched, "watched"):
                engine.watch(where, config, read_all, max_bytes=None, on_done=on_done)
            await clock.sleep_until(clock.now() + 2.5)  # a few checks find nothing
            every = _many(waited, "waited") + _many(watched, "watched")
            for number, where in enumerate(every):
                if number % 10 == 0:
                    s3.put_object(str(where.failure), b"bad input")
                else:
                    s3.put_object(str(where.output), b"done")
            with clock.move_on_at(clock.now() + 50):
                await finished.wait()
        assert not engine._pending and not engine._watchers
    return outcomes


async def test_a_check_costs_the_same_however_many_waits_it_serves() -> None:
    counts: dict[int, tuple[int, int]] = {}
    for count in (10, 400):
        s3, clock = FakeS3(), FakeClock()
        config = WaiterConfig(max_attempts=6, delay=1.0, backoff=1.0)
        async with (
            engine_on(s3, clock, detection="list") as engine,
            anyio.create_task_group() as tasks,
        ):
            for where in _many(count):
                tasks.start_soon(_times_out, engine, where, config)
        counts[count] = (engine.stats.lane_checks, sum(s3.lists.values()))
    # registered together: one cohort, whose two lanes (outputs, failures) make 6 checks each
    assert counts[10] == counts[400] == (12, 12)


async def _times_out(engine: WaitingEngine, where: ResultLocations, config: WaiterConfig) -> None:
    with pytest.raises(PollingTimeoutError) as caught:
        await engine.wait(where, config, read_all, max_bytes=None)
    assert caught.value.attempts == 6


async def test_the_engine_runs_in_its_owners_task_group() -> None:
    s3, clock = FakeS3(), FakeClock()
    orphan = WaitingEngine(s3, RequestBudget(200.0, clock=clock), clock=clock)
    with pytest.raises(RuntimeError, match="start_soon"):
        orphan.start()  # no task of its own behind its owner's back
    async with anyio.create_task_group() as owner:
        budget = RequestBudget(200.0, clock=clock)
        engine = WaitingEngine(s3, budget, clock=clock, start_soon=owner.start_soon)
        engine.start()
        engine.start()  # once
        owner.cancel_scope.cancel()  # the owner's group ending ends the engine's work
    assert engine._stopped is not None and engine._stopped.is_set()


async def test_listed_keys_that_do_not_get_stay_within_the_budget() -> None:
    s3, clock = FakeS3(), FakeClock()
    keys, rate, timeout = 200, 20.0, 4.0
    ghosts = [f"s3://bucket/ghost/{i}.out" for i in range(keys)]
    for ghost in ghosts:  # listed, but every GET finds nothing
        s3.put_object(ghost, b"")
        s3.ghosts.add(ghost)
    config = WaiterConfig(max_attempts=None, delay=0.2, timeout=timeout)
    errors: list[PollingTimeoutError] = []

    async def wait(engine: WaitingEngine, output: str) -> None:
        with pytest.raises(PollingTimeoutError) as caught:
            await engine.wait(locations(output, None), config, read_all, max_bytes=None)
        errors.append(caught.value)

    async with (
        engine_on(s3, clock, rate=rate, detection="list") as engine,
        anyio.create_task_group() as tasks,
    ):
        for ghost in ghosts:
            tasks.start_soon(wait, engine, ghost)
    assert len(errors) == keys
    requests = sum(s3.gets.values()) + sum(s3.lists.values())
    # every GET of a listed key that misses is charged: the budget's tokens over the wait,
    # its burst, and the one round of GETs the first listing set off
    allowed = rate * clock.elapsed + rate * 0.25 + keys
    assert requests <= allowed, (requests, allowed)
    # exactly: one listing, one GET per ghost; that round's debt holds the next listing off
    # past the timeout, so no key is read twice
    assert sum(s3.lists.values()) == 1 and s3.gets == dict.fromkeys(ghosts, 1)


async def test_reading_listed_results_costs_the_detection_budget_nothing() -> None:
    s3, clock = FakeS3(), FakeClock()
    outputs = [f"s3://bucket/out/done/{i}.out" for i in range(50)]
    for output in outputs:
        s3.put_object(output, b"done")
    config = WaiterConfig(max_attempts=None, delay=1.0, timeout=60)
    outcomes: list[Any] = []

    async def wait(engine: WaitingEngine, output: str) -> None:
        where = locations(output, None)
        outcomes.append(await engine.wait(where, config, read_all, max_bytes=None))

    async with (
        engine_on(s3, clock, detection="list") as engine,
        anyio.create_task_group() as tasks,
    ):
        for output in outputs:
            tasks.start_soon(wait, engine, output)
    assert len(outcomes) == 50 and all(isinstance(o, Completed) for o in outcomes)
    assert s3.gets == dict.fromkeys(outputs, 1)
    # reads that bring a result are never charged: only LISTs count
    assert engine.budget.granted == sum(s3.lists.values()) == 1


class _CountingS3(FakeS3):
    """FakeS3 that records the most result reads (``get``) in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.limiter = anyio.CapacityLimiter(64)  # a pool that would allow 64 reads at once
        self.reading = self.most_reading = 0

    async def get(self, uri: S3Uri, consume: Any, *, max_bytes: int | None = None, **_: Any) -> Any:
        self.reading += 1
        self.most_reading = max(self.most_reading, self.reading)
        try:
            await anyio.lowlevel.checkpoint()  # reads overlap: each takes a loop round trip
            return await super().get(uri, consume, max_bytes=max_bytes)
        finally:
            self.reading -= 1


async def test_a_listing_that_finds_many_results_reads_them_a_few_at_once() -> None:
    s3, clock = _CountingS3(), FakeClock()
    every = _many(1000, "burst")
    for where in every:
        s3.put_object(str(where.output), b"done")
    config = WaiterConfig(max_attempts=None, delay=1.0, timeout=60)
    outcomes: list[Any] = []
    finished = anyio.Event()

    def on_done(outcome: Any, error: BaseException | None) -> None:
        outcomes.append(outcome if error is None else error)
        if len(outcomes) == len(every):
            finished.set()

    async with engine_on(s3, clock, detection="list") as engine:
        for where in every:
            engine.watch(where, config, read_all, max_bytes=None, on_done=on_done)
        with clock.move_on_at(clock.now() + 50):
            await finished.wait()
    assert len(outcomes) == 1000 and all(isinstance(o, Completed) for o in outcomes)
    assert sum(s3.lists.values()) <= 2  # one listing of the outputs found them all
    # the 1,000 results a listing found are read MAX_SETTLERS at a time, not 64 (the pool)
    assert s3.most_reading == 16 == MAX_SETTLERS


class _SlowReadS3(FakeS3):
    """FakeS3 whose result reads (``get``) each take ``seconds`` of the fake clock."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    async def get(self, uri: S3Uri, consume: Any, *, max_bytes: int | None = None, **_: Any) -> Any:
        await self.clock.sleep_until(self.clock.now() + self.seconds)
        return await super().get(uri, consume, max_bytes=max_bytes)


async def test_a_burst_of_results_being_read_does_not_hold_off_other_groups_checks() -> None:
    clock = FakeClock()
    s3 = _SlowReadS3(clock, seconds=2.0)
    burst = [f"s3://bucket/out/a/{i}.out" for i in range(300)]
    for output in burst:
        s3.put_object(output, b"done")
    late = "s3://bucket/late/b/late.out"  # another parent: listed on its own
    config = WaiterConfig(max_attempts=None, delay=1.0, timeout=60)
    found_at: dict[str, float] = {}

    async def wait(engine: WaitingEngine, output: str) -> None:
        outcome = await engine.wait(locations(output, None), config, read_all, max_bytes=None)
        assert isinstance(outcome, Completed)
        found_at[output] = clock.elapsed

    async def write_late() -> None:
        await clock.sleep_until(clock.now() + 0.5)
        s3.put_object(late, b"done")

    async with (
        engine_on(s3, clock, rate=20.0, detection="list") as engine,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(write_late)
        for output in [*burst, late]:
            tasks.start_soon(wait, engine, output)
    # the 300 reads of group a are results, not detection requests: group b's check one
    # second in is not put off until the budget (20/s) would have paid for 300 requests
    assert s3.lists["s3://bucket/late/b/"] == 2
    assert found_at[late] < 2 * config.delay + 2.0, found_at[late]


class _GhostFirstS3(FakeS3):
    """The first GET of each ghost finds nothing (a listing ran ahead of the object)."""

    async def get_once(self, uri: S3Uri, consume: Any, **kwargs: Any) -> Any:
        found = await super().get_once(uri, consume, **kwargs)
        self.ghosts.discard(str(uri))
        return found


async def test_a_wait_whose_listed_key_did_not_get_is_checked_again() -> None:
    s3, clock = _GhostFirstS3(), FakeClock()
    s3.put_object(OUTPUT, b"late", "text/plain")
    s3.ghosts.add(OUTPUT)
    config = WaiterConfig(max_attempts=None, delay=1.0, timeout=30.0)
    async with engine_on(s3, clock, detection="list") as engine:
        outcome = await engine.wait(locations(), config, read_all, max_bytes=None)
    assert isinstance(outcome, Completed) and outcome.fetched.value == b"late"
    # rearmed after the miss, listed again at its next check: found and read
    assert s3.gets[OUTPUT] == 2 and sum(s3.lists.values()) >= 2
    assert clock.elapsed < 5.0


def _sub_prefixes(groups: int, per_group: int) -> list[ResultLocations]:
    """Waits spread over sub-prefixes of one parent, as a predictor lays them out (a
    sub-prefix per 1,000 submissions, for the outputs and for the failure files)."""
    return [
        ResultLocations(
            S3Uri.parse(f"s3://bucket/out/p/{g}/{i}.out"),
            S3Uri.parse(f"s3://bucket/fail/p/{g}/{i}-error.out"),
            f"id-{g}-{i}",
        )
        for g in range(groups)
        for i in range(per_group)
    ]


async def test_one_listing_of_the_parent_checks_every_sub_prefix() -> None:
    s3, clock = FakeS3(), FakeClock()
    config = WaiterConfig(max_attempts=4, delay=1.0, backoff=1.0)
    async with engine_on(s3, clock) as engine, anyio.create_task_group() as tasks:
        for where in _sub_prefixes(groups=10, per_group=20):
            tasks.start_soon(_times_out_after, engine, where, config, 4)
    # 10 output and 10 failure sub-prefixes, 4 checks each: one LIST per parent and check
    # instead of one per sub-prefix (80)
    assert dict(s3.lists) == {"s3://bucket/out/p/": 4, "s3://bucket/fail/p/": 4}
    assert sum(s3.gets.values()) == 0
    assert engine.stats.sibling_lists == 8 and engine.stats.lane_checks == 80


async def _times_out_after(
    engine: WaitingEngine, where: ResultLocations, config: WaiterConfig, attempts: int
) -> None:
    with pytest.raises(PollingTimeoutError) as caught:
        await engine.wait(where, config, read_all, max_bytes=None)
    assert caught.value.attempts == attempts


async def test_results_landing_out_of_order_under_a_listed_parent_are_all_found() -> None:
    s3, clock = FakeS3(), FakeClock()
    every = _sub_prefixes(groups=5, per_group=30)
    config = WaiterConfig(max_attempts=None, delay=1.0, backoff=1.0, timeout=60)
    outcomes: dict[str, Any] = {}
    landed: dict[str, float] = {}

    async def land() -> None:  # the last sub-prefix's last result first, and so on
        for number, where in enumerate(reversed(every)):
            await clock.sleep_until(clock.now() + 0.05)
            if number % 25 == 0:
                s3.put_object(str(where.failure), b"bad input")
            else:
                s3.put_object(str(where.output), b"done")
            landed[str(where.output)] = clock.now()

    async def wait(engine: WaitingEngine, where: ResultLocations) -> None:
        outcome = await engine.wait(where, config, read_all, max_bytes=None)
        outcomes[str(where.output)] = (outcome, clock.now())

    async with engine_on(s3, clock) as engine, anyio.create_task_group() as tasks:
        tasks.start_soon(land)
        for where in every:
            tasks.start_soon(wait, engine, where)
    assert len(outcomes) == len(every)
    failed = [o for o, _ in outcomes.values() if isinstance(o, Failed)]
    assert len(failed) == 6 and all("bad input" in o.message for o in failed)
    # each found within about one interval of landing (listed at least once a second)
    assert max(at - landed[key] for key, (_, at) in outcomes.items()) <= 1.0 + 0.1
    # listed through the parents while siblings waited (the last sub-prefix left on its own)
    assert s3.lists["s3://bucket/out/p/"] > 0 and s3.lists["s3://bucket/fail/p/"] > 0
    assert not any(
        s3.lists[f"s3://bucket/{kind}/p/{g}/"] for kind in ("out", "fail") for g in (1, 2, 3, 4)
    )


def _three_sub_prefixes() -> list[ResultLocations]:
    """20 waits in each of three sub-prefixes of ``out/p/`` (no failure locations)."""
    return [
        ResultLocations(S3Uri.parse(f"s3://bucket/out/p/{g}/{i}.out"), None, f"id-{g}-{i}")
        for g in range(3)
        for i in range(20)
    ]


async def test_a_parent_that_outgrew_its_sub_prefixes_is_listed_no_more() -> None:
    s3, clock = FakeS3(), FakeClock()
    for i in range(1500):  # not awaited, in a sibling sub-prefix: the parent takes 2 pages
        s3.put_object(f"s3://bucket/out/p/old/{i:04d}.out", b"old")
    config = WaiterConfig(max_attempts=4, delay=1.0, backoff=1.0)
    everything = _three_sub_prefixes()
    async with engine_on(s3, clock) as engine, anyio.create_task_group() as tasks:
        for where in everything:
            tasks.start_soon(_times_out_after, engine, where, config, 4)
    # one page of the parent, then each sub-prefix on its own: 3 x 4 checks
    assert s3.lists["s3://bucket/out/p/"] == 1
    assert [s3.lists[f"s3://bucket/out/p/{g}/"] for g in range(3)] == [4, 4, 4]
    assert engine.stats.sibling_lists == 0


async def test_waits_joining_a_checked_group_ride_along_with_its_next_check() -> None:
    s3, clock = FakeS3(), FakeClock()
    config = WaiterConfig(max_attempts=None, delay=1.0, backoff=1.0, timeout=4.0)
    ready = "s3://bucket/out/h/ready.out"  # there already when its wait registers, at 2.1 s
    s3.put_object(ready, b"done")
    found_after: list[float] = []

    async def wait_ready(engine: WaitingEngine) -> None:
        started = clock.now()
        outcome = await engine.wait(locations(ready, None), config, read_all, max_bytes=None)
        assert isinstance(outcome, Completed)
        found_after.append(clock.now() - started)

    async with engine_on(s3, clock, detection="list") as engine, anyio.create_task_group() as tasks:
        start = clock.now()
        for burst in range(10):  # a cohort every 0.25 s for 2.5 s, as submissions come back
            await clock.sleep_until(start + 0.25 * burst)
            if burst == 8:
                tasks.start_soon(wait_ready, engine)
            for i in range(20):
                where = locations(f"s3://bucket/out/h/{burst}-{i}.out", None)
                tasks.start_soon(_times_out_of, engine, where, config)
    # the first checks of the cohorts joining the listed group ride along with its checks
    # once a second (21 LISTs when each cohort's first check is a LIST of its own, 0.1 s
    # after it registered); every wait still ended at its own deadline
    assert s3.lists["s3://bucket/out/h/"] == 15
    # a result there already is found by the group's next check, within FIRST_CHECK_HOLD
    assert len(found_after) == 1 and found_after[0] <= FIRST_CHECK_HOLD


async def _times_out_of(
    engine: WaitingEngine, where: ResultLocations, config: WaiterConfig
) -> None:
    with pytest.raises(PollingTimeoutError) as caught:
        await engine.wait(where, config, read_all, max_bytes=None)
    assert caught.value.seconds == config.timeout


class _NoParentListing(FakeS3):
    """FakeS3 where listing one prefix is denied (a policy that allows its sub-prefixes)."""

    def __init__(self, denied: str) -> None:
        super().__init__()
        self.denied = denied

    async def list_page(self, bucket: str, prefix: str, token: str | None = None) -> Any:
        if prefix == self.denied:
            self.lists[f"s3://{bucket}/{prefix}"] += 1
            error = {"Error": {"Code": "AccessDenied", "Message": "denied"}}
            raise ClientError(error, "ListObjectsV2")
        return await super().list_page(bucket, prefix, token)


async def test_a_parent_that_may_not_be_listed_leaves_its_sub_prefixes_listed_one_by_one() -> None:
    s3, clock = _NoParentListing("out/p/"), FakeClock()
    config = WaiterConfig(max_attempts=3, delay=1.0, backoff=1.0)
    everything = _three_sub_prefixes()
    async with engine_on(s3, clock) as engine, anyio.create_task_group() as tasks:
        for where in everything:
            tasks.start_soon(_times_out_after, engine, where, config, 3)
    assert s3.lists["s3://bucket/out/p/"] == 1  # tried once, then never again
    assert [s3.lists[f"s3://bucket/out/p/{g}/"] for g in range(3)] == [3, 3, 3]
