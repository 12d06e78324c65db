"""Fault injection: ServiceUnavailable rate, model latency (seeded), slow accepts."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from aiosagemaker.local import ConfigError, FaultConfig, Latency, LocalEndpoint

from .local_helpers import client, get_object, submit


def test_unavailable_rate_one(emu: LocalEndpoint, env: dict[str, str]) -> None:
    runtime = client("sagemaker-runtime", env, retries={"max_attempts": 1, "mode": "standard"})
    before = emu.stats("echo")
    emu.set_faults(FaultConfig(unavailable_rate=1.0))
    with pytest.raises(runtime.exceptions.ServiceUnavailable) as info:
        submit(runtime, emu.env, "echo", b"x")
    metadata = info.value.response["ResponseMetadata"]
    assert metadata["HTTPStatusCode"] == 503
    # retries={"max_attempts": 1} means one retry in botocore: two requests in total
    attempts = metadata["RetryAttempts"] + 1
    assert attempts == 2
    after = emu.stats("echo")
    assert after.rejected_unavailable == before.rejected_unavailable + attempts
    assert after.accepted == before.accepted
    emu.faults = FaultConfig()
    assert submit(runtime, emu.env, "echo", b"x")["InferenceId"]


def test_internal_failure_rate_one(emu: LocalEndpoint, env: dict[str, str]) -> None:
    runtime = client("sagemaker-runtime", env, retries={"total_max_attempts": 1})
    before = emu.stats("echo")
    emu.set_faults(FaultConfig(internal_failure_rate=1.0))
    with pytest.raises(runtime.exceptions.InternalFailure) as info:
        submit(runtime, emu.env, "echo", b"x")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    after = emu.stats("echo")
    assert after.rejected_internal == before.rejected_internal + 1
    assert after.accepted == before.accepted


def test_unavailable_rate_is_seeded(emu: LocalEndpoint, env: dict[str, str]) -> None:
    runtime = client("sagemaker-runtime", env, retries={"total_max_attempts": 1})

    def outcomes() -> list[bool]:
        emu.set_faults(FaultConfig(unavailable_rate=0.5, seed=1234))
        result = []
        for _ in range(12):
            try:
                submit(runtime, emu.env, "echo", b"x")
                result.append(True)
            except runtime.exceptions.ServiceUnavailable:
                result.append(False)
        return result

    first = outcomes()
    assert first == outcomes()
    rng = random.Random(1234)
    assert first == [rng.random() >= 0.5 for _ in range(12)]


def test_model_latency_delays_results(emu: LocalEndpoint, runtime: Any, s3: Any) -> None:
    emu.set_faults(FaultConfig(model_latency=0.3))
    started = time.monotonic()
    response = submit(runtime, emu.env, "echo", b"late")
    emu.wait_idle_sync(30)
    assert time.monotonic() - started >= 0.3
    assert get_object(s3, response["OutputLocation"])[0] == b"late"


def test_latency_counts_against_invocation_timeout(
    emu: LocalEndpoint, runtime: Any, s3: Any
) -> None:
    emu.set_faults(FaultConfig(model_latency=Latency.uniform(5.0, 6.0), seed=3))
    before = emu.stats("echo").expired
    response = submit(runtime, emu.env, "echo", b"x", InvocationTimeoutSeconds=1)
    emu.wait_idle_sync(30)
    assert emu.stats("echo").expired == before + 1
    assert b"InvocationTimeoutSeconds (1 s)" in get_object(s3, response["FailureLocation"])[0]


def test_slow_accept(emu: LocalEndpoint, runtime: Any) -> None:
    emu.set_faults(FaultConfig(accept_delay=0.3))
    started = time.monotonic()
    submit(runtime, emu.env, "echo", b"x")
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.25", Latency("fixed", 0.25)),
        ("fixed:1", Latency("fixed", 1.0)),
        ("uniform:0.1,0.3", Latency("uniform", 0.1, 0.3)),
        ("lognormal:0.2", Latency("lognormal", 0.2, 0.5)),
        ("lognormal:0.2,1", Latency("lognormal", 0.2, 1.0)),
    ],
)
def test_latency_parse(text: str, expected: Latency) -> None:
    assert Latency.parse(text) == expected


@pytest.mark.parametrize("text", ["x", "uniform:1", "uniform:3,1", "gamma:1", "fixed:-1"])
def test_latency_parse_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        Latency.parse(text)


def test_latency_distributions_are_seeded() -> None:
    for latency in (Latency.uniform(0.1, 0.2), Latency.lognormal(0.2, 0.5)):
        first = [latency.sample(random.Random(9)) for _ in range(3)]
        assert first == [latency.sample(random.Random(9)) for _ in range(3)]
    rng = random.Random(1)
    samples = [Latency.uniform(0.1, 0.2).sample(rng) for _ in range(100)]
    assert all(0.1 <= s <= 0.2 for s in samples)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"unavailable_rate": 1.5},
        {"unavailable_rate": -0.1},
        {"internal_failure_rate": 2.0},
        {"accept_delay": -1.0},
    ],
)
def test_fault_config_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        FaultConfig(**kwargs)  # type: ignore[arg-type]
