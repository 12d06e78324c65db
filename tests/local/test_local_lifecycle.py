"""LocalEndpoint lifecycle: stats before start, stop with pending work, restart errors."""

from __future__ import annotations

import pytest

from aiosagemaker.local import EndpointSpec, EndpointStats, LocalEndpoint

from .local_helpers import GateModel, client, get_object, submit


def test_stop_abandons_pending_work() -> None:
    gate = GateModel()
    local = LocalEndpoint(
        EndpointSpec(name="held", model=gate, max_concurrent_invocations_per_instance=1)
    )
    assert local.stats("held") == EndpointStats()
    try:
        with local:
            runtime = client("sagemaker-runtime", local.env)
            submit(runtime, local.env, "held", b"running")
            submit(runtime, local.env, "held", b"queued")
            gate.wait_arrivals(1)
            local.wait_for_stats_sync("held", lambda s: s.queued == 1 and s.in_flight == 1)
            with pytest.raises(TimeoutError):
                local.wait_idle_sync(0.05)
            with pytest.raises(RuntimeError, match="already started"):
                local.start()
        stats = local.stats("held")
        assert (stats.accepted, stats.queued, stats.in_flight) == (2, 0, 0)
        local.wait_idle_sync(0)
    finally:
        gate.release()


def test_unknown_endpoint_name_in_introspection() -> None:
    local = LocalEndpoint(EndpointSpec(name="only", model="aiosagemaker.local.models:echo"))
    with pytest.raises(KeyError, match="no endpoint named 'other'"):
        local.stats("other")
    assert local.endpoint("only").name == "only"


@pytest.mark.anyio
async def test_works_while_the_callers_loop_is_blocked() -> None:
    async with LocalEndpoint(
        EndpointSpec(name="busy", model="aiosagemaker.local.models:echo")
    ) as local:
        # Everything below blocks this event loop; the emulator runs on its own loop.
        runtime = client("sagemaker-runtime", local.env)
        response = submit(runtime, local.env, "busy", b"still served")
        local.wait_idle_sync(30)
        assert get_object(client("s3", local.env), response["OutputLocation"]) == (
            b"still served",
            "application/octet-stream",
        )
