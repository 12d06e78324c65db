"""LocalEndpoint lifecycle: stats before start, stop with pending work, restart errors."""

from __future__ import annotations

import pytest

from aiosagemaker.local import EndpointSpec, EndpointStats, LocalEndpoint

from .local_helpers import GateModel, client, submit


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
