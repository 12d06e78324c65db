"""An endpoint scaled to zero: the emulator queues and runs nothing, DescribeEndpoint shows no
instances, and a client's PollingTimeoutError says so (one bounded DescribeEndpoint)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from aiosagemaker import AsyncPredictor, PollingTimeoutError, WaiterConfig
from aiosagemaker.local import ConfigError, EndpointSpec, LocalEndpoint
from aiosagemaker.local._configfile import parse_config
from s3_fault_proxy import Fault, running_proxy_async

from .local_helpers import GateModel, client, get_object, submit, wait_for_object

DEADLINE_SECONDS = 60.0
SHORT_WAIT = WaiterConfig(max_attempts=2, delay=0.05)
HELD = GateModel()
TIMEOUT_PREFIX = "No result at {} after polling for "


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalEndpoint]:
    specs = [
        EndpointSpec(name="cold", model="aiosagemaker.local.models:echo", instance_count=0),
        EndpointSpec(name="scaled", model="aiosagemaker.local.models:echo", instance_count=0),
        EndpointSpec(name="held", model=HELD),
    ]
    with LocalEndpoint(specs) as local:
        yield local
    HELD.release()


@pytest.fixture
def env(emulator: LocalEndpoint, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    for key, value in emulator.env.items():
        monkeypatch.setenv(key, value)
    return dict(emulator.env)


def _variants(sm: Any, name: str) -> list[tuple[int, int]]:
    described = sm.describe_endpoint(EndpointName=name)
    return [
        (v["CurrentInstanceCount"], v["DesiredInstanceCount"])
        for v in described["ProductionVariants"]
    ]


def test_scaled_to_zero_accepts_and_queues_until_scaled_out(
    emulator: LocalEndpoint, env: dict[str, str]
) -> None:
    sm, s3 = client("sagemaker", env), client("s3", env)
    runtime = client("sagemaker-runtime", env)
    assert _variants(sm, "scaled") == [(0, 0)]
    responses = [submit(runtime, env, "scaled", b"queued-%d" % i) for i in range(3)]
    stats = emulator.stats("scaled")
    assert (stats.accepted, stats.queued, stats.in_flight, stats.completed) == (3, 3, 0, 0)

    emulator.set_instance_count("scaled", 1)
    assert _variants(sm, "scaled") == [(1, 1)]
    emulator.wait_for_stats_sync("scaled", lambda s: s.completed == 3, DEADLINE_SECONDS)
    for i, response in enumerate(responses):
        assert get_object(s3, response["OutputLocation"])[0] == b"queued-%d" % i

    sm.update_endpoint_weights_and_capacities(
        EndpointName="scaled",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0}],
    )
    assert _variants(sm, "scaled") == [(0, 0)]
    late = submit(runtime, env, "scaled", b"late")
    emulator.wait_for_stats_sync("scaled", lambda s: s.accepted == 4, DEADLINE_SECONDS)
    stats = emulator.stats("scaled")
    assert (stats.queued, stats.in_flight, stats.completed) == (1, 0, 3)
    sm.update_endpoint_weights_and_capacities(
        EndpointName="scaled",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}],
    )
    wait_for_object(s3, late["OutputLocation"], DEADLINE_SECONDS)
    assert _variants(sm, "scaled") == [(2, 2)]


def test_instance_count_checks(emulator: LocalEndpoint, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="integer >= 0"):
        emulator.set_instance_count("cold", -1)
    with pytest.raises(KeyError, match="no endpoint named 'nope'"):
        emulator.set_instance_count("nope", 1)
    sm = client("sagemaker", env)
    with pytest.raises(sm.exceptions.ClientError, match="does not exist"):
        sm.update_endpoint_weights_and_capacities(
            EndpointName="cold",
            DesiredWeightsAndCapacities=[{"VariantName": "other", "DesiredInstanceCount": 1}],
        )
    assert parse_config({"endpoints": [{"name": "z", "model": "m:f", "instance_count": 0}]})
    with pytest.raises(ConfigError, match="instance_count must be an integer >= 0"):
        LocalEndpoint(EndpointSpec(name="neg", model="m:f", instance_count=-1))


async def _timeout_of(endpoint: str, payload: bytes) -> tuple[PollingTimeoutError, str]:
    async with AsyncPredictor(endpoint, waiter_config=SHORT_WAIT) as predictor:
        response = await predictor.predict_async(payload)
        with pytest.raises(PollingTimeoutError) as caught:
            await response
    return caught.value, response.output_path


@pytest.mark.anyio
async def test_a_timeout_on_an_endpoint_scaled_to_zero_says_so(env: dict[str, str]) -> None:
    error, output_path = await _timeout_of("cold", b"never runs")
    text = str(error)
    assert text.startswith(TIMEOUT_PREFIX.format(output_path)), text
    for needed in (
        "'cold' has no running instances",
        "CurrentInstanceCount 0",
        "ApproximateBacklogSize",
        "HasBacklogWithoutCapacity",
        "scaling policy",
    ):
        assert needed in text
        assert needed in error.message
    assert error.output_path == output_path


@pytest.mark.anyio
async def test_a_timeout_with_running_instances_is_unchanged(env: dict[str, str]) -> None:
    HELD.reset()
    try:
        error, output_path = await _timeout_of("held", b"held")
    finally:
        HELD.release()
    assert str(error).startswith(TIMEOUT_PREFIX.format(output_path))
    assert "HasBacklogWithoutCapacity" not in str(error)


@pytest.fixture
async def control_proxy(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """A fault proxy in front of the control plane only (InvokeEndpointAsync goes direct)."""
    async with running_proxy_async(env["AWS_ENDPOINT_URL_SAGEMAKER"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", proxy.url)
        yield proxy


@pytest.mark.anyio
async def test_a_failing_describe_leaves_the_timeout_as_it_is(control_proxy: Any) -> None:
    control_proxy.add(Fault("POST", "/", status=400, code="AccessDeniedException", document="json"))
    error, output_path = await _timeout_of("cold", b"denied")
    assert type(error) is PollingTimeoutError
    assert str(error).startswith(TIMEOUT_PREFIX.format(output_path))
    assert "HasBacklogWithoutCapacity" not in str(error)
    assert control_proxy.count("POST") >= 1  # the describe was made, and refused


@pytest.mark.anyio
async def test_a_hanging_describe_is_bounded(control_proxy: Any) -> None:
    # The answer (which would add the note) comes 8 s late; the describe gives up after 5 s.
    control_proxy.add(Fault("POST", "/", after_forward="hang", hang=8))
    started = time.monotonic()
    error, output_path = await _timeout_of("cold", b"hangs")
    assert time.monotonic() - started < 60  # did not wait for minutes
    assert str(error).startswith(TIMEOUT_PREFIX.format(output_path))
    assert "HasBacklogWithoutCapacity" not in str(error)  # the late answer was not used
    assert control_proxy.count("POST") >= 1


def test_cli_instances_zero() -> None:
    from aiosagemaker.local._cli import _build, build_parser

    parser = build_parser()
    local = _build(parser.parse_args(["local", "serve", "--instances", "0"]))
    assert isinstance(local, LocalEndpoint)
    assert local.endpoint("demo").instance_count == 0
    with pytest.raises(SystemExit) as caught:
        parser.parse_args(["local", "serve", "--instances", "-1"])
    assert caught.value.code == 2
