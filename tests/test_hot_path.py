"""The hot path: found results are read ahead of queued uploads; invokes in flight are bounded."""

from __future__ import annotations

import anyio
import pytest

from helpers import FAST, make_predictor

pytestmark = pytest.mark.anyio


async def test_a_found_result_is_read_while_uploads_hold_every_shared_slot(
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

