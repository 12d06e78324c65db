"""predictor.map / map_ordered: bounded, lazy, failure-tolerant batches on the waiting engine."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiosagemaker import AsyncInferenceModelError, BatchOutcome, BatchProgress
from helpers import make_predictor, until

pytestmark = pytest.mark.anyio


def payload(i: int) -> dict[str, Any]:
    if i % 7 == 3:
        return {"fail": f"row {i} is bad", "sleep": 0.05}
    return {"output": i * 10, "sleep": 0.05 * (i % 4)}


async def test_map_yields_every_outcome_once_within_the_concurrency(
    aws_env: dict[str, str],
) -> None:
    consumed = 0
    worst = 0

    def progress(counts: BatchProgress) -> None:
        nonlocal worst
        worst = max(worst, counts.submitted - consumed)

    outcomes: list[BatchOutcome] = []
    async with (
        make_predictor() as predictor,
        predictor.map([payload(i) for i in range(40)], concurrency=6, progress=progress) as run,
    ):
        async for outcome in run:
            consumed += 1
            outcomes.append(outcome)
    assert sorted(o.index for o in outcomes) == list(range(40))
    assert worst <= 6
    for outcome in outcomes:
        assert outcome.response is not None
        if outcome.index % 7 == 3:
            assert isinstance(outcome.exception, AsyncInferenceModelError)
            assert f"row {outcome.index} is bad" in str(outcome.exception)
            assert not outcome.ok and outcome.result is None
        else:
            assert outcome.ok and outcome.result == outcome.index * 10


async def test_map_reads_an_async_iterable_lazily(aws_env: dict[str, str]) -> None:
    pulled = 0

    async def rows() -> AsyncIterator[dict[str, Any]]:
        nonlocal pulled
        for i in range(30):
            pulled += 1
            yield {"output": i}

    seen_at_first = None
    results = set()
    async with make_predictor() as predictor:
        async for outcome in predictor.map(rows(), concurrency=4):
            if seen_at_first is None:
                seen_at_first = pulled
            results.add(outcome.result)
    assert seen_at_first is not None and seen_at_first <= 4 + 1
    assert results == set(range(30))


async def test_map_ordered_keeps_input_order(aws_env: dict[str, str]) -> None:
    sleeps = [0.6, 0.0, 0.3, 0.0, 0.45, 0.1]
    async with make_predictor() as predictor:
        run = predictor.map_ordered(
            [{"output": i, "sleep": s} for i, s in enumerate(sleeps)], concurrency=3
        )
        outcomes = [outcome async for outcome in run]
    assert [o.index for o in outcomes] == list(range(len(sleeps)))
    assert [o.result for o in outcomes] == list(range(len(sleeps)))


async def test_a_refused_submission_is_an_outcome(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        outcomes = [o async for o in predictor.map([{"output": 1}, {1, 2}, {"output": 3}])]
    by_index = {o.index: o for o in outcomes}
    assert by_index[0].result == 1 and by_index[2].result == 3
    assert by_index[1].response is None and isinstance(by_index[1].exception, TypeError)


async def test_leaving_early_unregisters_what_is_pending(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        before = len(asyncio.all_tasks())
        async with predictor.map(
            [{"output": 0}] + [{"output": i, "sleep": 5} for i in range(1, 10)], concurrency=10
        ) as run:
            async for outcome in run:
                assert outcome.result == 0
                break
        engine = await predictor.response_binding.engine()
        assert all(group.size == 0 for group in engine._groups.values())
        # the engine's checks for the unregistered responses end on the next loop turns
        await until(lambda: len(asyncio.all_tasks()) <= before)


async def test_progress_bar_and_its_extra(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_predictor() as predictor:
        outcomes = [o async for o in predictor.map([{"output": 1}], progress=True)]
        assert outcomes[0].result == 1
        monkeypatch.setitem(sys.modules, "tqdm.auto", None)
        with pytest.raises(ImportError, match=r"aiosagemaker\[progress\]"):
            predictor.map([{"output": 1}], progress=True)


def test_bad_arguments() -> None:
    predictor = make_predictor()
    with pytest.raises(ValueError, match="concurrency"):
        predictor.map([], concurrency=0)
    with pytest.raises(TypeError, match="iterable"):
        predictor.map(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="progress"):
        predictor.map([], progress="yes")  # type: ignore[arg-type]
