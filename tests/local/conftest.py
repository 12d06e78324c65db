"""Fixtures for the emulator's tests: one shared emulator (moto behind it) on loopback ports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from aiosagemaker.local import EndpointSpec, FaultConfig, LocalEndpoint

from .local_helpers import INPUT_BUCKET, GateModel, client

GATE = GateModel()


async def async_upper(body: bytes, content_type: str | None, accept: str | None) -> bytes:
    """An async model: upper-cases the body."""
    return body.upper()


def sync_text(body: bytes, content_type: str | None, accept: str | None) -> str:
    """A sync model returning ``str`` (content type from Accept or text/plain)."""
    return body.decode()[::-1]


def json_model(body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
    """Fails on ``{"fail": msg}``; otherwise wraps the input."""
    data = json.loads(body)
    if "fail" in data:
        raise RuntimeError(data["fail"])
    return json.dumps({"got": data}).encode(), "application/json"


ENDPOINTS = [
    EndpointSpec(name="echo", model="aiosagemaker.local.models:echo"),
    EndpointSpec(name="demo", model="aiosagemaker.local.models:demo"),
    EndpointSpec(name="async-upper", model=async_upper),
    EndpointSpec(name="sync-text", model=sync_text),
    EndpointSpec(
        name="gate",
        model=GATE,
        max_concurrent_invocations_per_instance=2,
        instance_count=2,
    ),
    EndpointSpec(
        name="notify",
        model=json_model,
        output_path="s3://emulator-test-results/notify/out",
        failure_path="s3://emulator-test-results/notify/failed",
        success_topic="emu-success",
        error_topic="emu-error",
        include_inference_response_in=("SUCCESS_NOTIFICATION_TOPIC",),
    ),
    EndpointSpec(
        name="notify-plain",
        model=json_model,
        success_topic="emu-plain-success",
        error_topic="arn:aws:sns:us-east-1:123456789012:emu-plain-error",
        include_inference_response_in=("error",),
        failure_path=False,
    ),
]


@pytest.fixture(scope="session")
def emu() -> Iterator[LocalEndpoint]:
    """The shared emulator (stopped by handle at the end of the session)."""
    with LocalEndpoint(ENDPOINTS) as local:
        yield local


@pytest.fixture
def env(emu: LocalEndpoint, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """``emu.env`` in the process environment, other AWS configuration removed."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    for key, value in emu.env.items():
        monkeypatch.setenv(key, value)
    yield dict(emu.env)
    emu.set_faults(FaultConfig())
    emu.wait_idle_sync(30)


@pytest.fixture
def gate(env: dict[str, str]) -> Iterator[GateModel]:
    """The gate endpoint's model, closed; released (and the emulator drained) afterwards."""
    GATE.reset()
    try:
        yield GATE
    finally:
        GATE.release()


@pytest.fixture(scope="session")
def s3(emu: LocalEndpoint) -> Any:
    """A sync S3 client on moto, with the input bucket created."""
    s3 = client("s3", emu.env)
    s3.create_bucket(Bucket=INPUT_BUCKET)
    return s3


@pytest.fixture
def runtime(env: dict[str, str]) -> Any:
    """A sync sagemaker-runtime client that finds the emulator only through the environment."""
    import boto3

    return boto3.client("sagemaker-runtime")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
