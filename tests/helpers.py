"""Small helpers shared by the client tests (not fixtures)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import anyio

from aiosagemaker import AsyncPredictor, JSONDeserializer, JSONSerializer, WaiterConfig
from aiosagemaker.local import LocalEndpoint
from conftest import BUCKET

FAST = WaiterConfig(max_attempts=None, delay=0.02, backoff=1.2, max_delay=0.25, timeout=30)
"""Waits up to 30 s, checking within 20 ms and then at least every 250 ms: for results the
test expects to arrive."""


def make_predictor(endpoint: str = "scripted", **kwargs: Any) -> AsyncPredictor:
    kwargs.setdefault("default_bucket", BUCKET)
    kwargs.setdefault("serializer", JSONSerializer())
    kwargs.setdefault("deserializer", JSONDeserializer())
    kwargs.setdefault("waiter_config", FAST)
    return AsyncPredictor(endpoint, **kwargs)


def raw(data: bytes, content_type: str = "application/octet-stream") -> dict[str, Any]:
    """A scripted-model payload that makes the model return exactly ``data``."""
    return {"raw_b64": base64.b64encode(data).decode(), "content_type": content_type}


async def until(condition: Callable[[], bool], deadline: float = 10.0) -> None:
    """Re-check a condition that has no event to wait on (counters, the kernel's socket
    table) on this event loop until it holds; fail after ``deadline`` seconds."""
    with anyio.fail_after(deadline):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the condition
            await anyio.sleep(0.01)


def key_of(uri: str) -> str:
    return uri.split("/", 3)[3]


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def sync_client(local: LocalEndpoint, service: str) -> Any:
    """A blocking boto3 client of ``service`` on the emulator's endpoint URL and credentials."""
    import boto3

    env = local.env
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
