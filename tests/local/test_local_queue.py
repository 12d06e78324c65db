"""Queue semantics: concurrency cap, FIFO order, RequestTTLSeconds and invocation timeouts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aiosagemaker.local import EndpointSpec, LocalEndpoint

from .local_helpers import GateModel, client, get_object, object_exists, submit

TIME_SCALE = 0.01
"""60 s (the TTL minimum) becomes 0.6 s; 20 s of invocation timeout become 0.2 s.

Requests that must not time out send InvocationTimeoutSeconds=3600 (36 s scaled), so a loaded
machine cannot turn a blocked model into an unexpected expiry.
"""
LONG = 3600

SCALED_GATE = GateModel()


@pytest.fixture(scope="module")
def scaled() -> Iterator[LocalEndpoint]:
    """An emulator whose TTLs and timeouts run 100x faster."""
    specs = [
        EndpointSpec(name="one-slot", model=SCALED_GATE, max_concurrent_invocations_per_instance=1),
        EndpointSpec(name="echo", model="aiosagemaker.local.models:echo"),
    ]
    with LocalEndpoint(specs, time_scale=TIME_SCALE) as local:
        yield local


@pytest.fixture
def scaled_gate(scaled: LocalEndpoint) -> Iterator[GateModel]:
    SCALED_GATE.reset()
    try:
        yield SCALED_GATE
    finally:
        SCALED_GATE.release()
        scaled.wait_idle_sync(30)


def test_concurrency_cap_is_observed(emu: LocalEndpoint, runtime: Any, gate: GateModel) -> None:
    spec = emu.endpoint("gate")
    assert spec.max_concurrency == 4  # 2 per instance x 2 instances
    before = emu.stats("gate")
    for index in range(10):
        submit(runtime, emu.env, "gate", f"job-{index}".encode())
    gate.wait_arrivals(4)
    stats = emu.wait_for_stats_sync(
        "gate", lambda s: s.in_flight == 4 and s.queued == 6 and s.accepted == before.accepted + 10
    )
    assert stats.max_in_flight == 4
    assert len(gate.arrivals) == 4
    gate.release()
    emu.wait_idle_sync(30)
    after = emu.stats("gate")
    assert after.completed == before.completed + 10
    assert after.max_in_flight == 4
    assert after.in_flight == 0 and after.queued == 0


def test_fifo_order(scaled: LocalEndpoint, scaled_gate: GateModel) -> None:
    runtime = client("sagemaker-runtime", scaled.env)
    submit(runtime, scaled.env, "one-slot", b"first", InvocationTimeoutSeconds=LONG)
    scaled_gate.wait_arrivals(1)
    for index in range(5):
        submit(
            runtime,
            scaled.env,
            "one-slot",
            f"{index}".encode(),
            RequestTTLSeconds=21600,
            InvocationTimeoutSeconds=LONG,
        )
    scaled.wait_for_stats_sync("one-slot", lambda s: s.queued == 5)
    scaled_gate.release()
    scaled.wait_idle_sync(30)
    assert scaled_gate.arrivals == [b"first", b"0", b"1", b"2", b"3", b"4"]


def test_request_ttl_expires_in_queue(scaled: LocalEndpoint, scaled_gate: GateModel) -> None:
    runtime = client("sagemaker-runtime", scaled.env)
    s3 = client("s3", scaled.env)
    before = scaled.stats("one-slot")
    blocker = submit(runtime, scaled.env, "one-slot", b"blocker", InvocationTimeoutSeconds=LONG)
    scaled_gate.wait_arrivals(1)
    waiting = submit(runtime, scaled.env, "one-slot", b"too late", RequestTTLSeconds=60)
    # 60 s x 0.01 = 0.6 s in the queue, while the only slot stays busy
    scaled.wait_for_stats_sync("one-slot", lambda s: s.expired == before.expired + 1)
    reason, content_type = get_object(s3, waiting["FailureLocation"])
    assert b"RequestTTLSeconds (60 s)" in reason
    assert content_type.startswith("text/plain")
    scaled_gate.release()
    scaled.wait_idle_sync(30)
    assert scaled_gate.arrivals == [b"blocker"]
    assert not object_exists(s3, waiting["OutputLocation"])
    assert get_object(s3, blocker["OutputLocation"])[0] == b"blocker"
    assert scaled.stats("one-slot").completed == before.completed + 1


def test_invocation_timeout_expires(scaled: LocalEndpoint, scaled_gate: GateModel) -> None:
    runtime = client("sagemaker-runtime", scaled.env)
    s3 = client("s3", scaled.env)
    before = scaled.stats("one-slot")
    response = submit(runtime, scaled.env, "one-slot", b"slow", InvocationTimeoutSeconds=20)
    # the gate never opens during the 0.2 s the model is given
    stats = scaled.wait_for_stats_sync("one-slot", lambda s: s.expired == before.expired + 1)
    assert stats.completed == before.completed
    reason, _ = get_object(s3, response["FailureLocation"])
    assert b"InvocationTimeoutSeconds (20 s)" in reason
    assert not object_exists(s3, response["OutputLocation"])


def test_scaled_timeouts_do_not_fire_for_fast_models(scaled: LocalEndpoint) -> None:
    runtime = client("sagemaker-runtime", scaled.env)
    s3 = client("s3", scaled.env)
    # 3600 s / 21600 s scaled: 36 s and 216 s, far above an echo call
    response = submit(runtime, scaled.env, "echo", b"quick", InvocationTimeoutSeconds=3600)
    scaled.wait_idle_sync(30)
    assert get_object(s3, response["OutputLocation"])[0] == b"quick"
