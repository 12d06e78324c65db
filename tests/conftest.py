"""Fixtures: the local emulator (with moto's S3/SNS/SQS) and recording proxies, all on loopback.

Clients under test reach the servers only through the standard ``AWS_ENDPOINT_URL_*``
variables. S3 traffic of the client goes through :class:`S3FaultProxy` (faults are injected
there, on the server side, and every request is counted); the emulator itself talks to moto
directly, so injected faults hit only the client.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from aiosagemaker.local import EndpointSpec, LocalEndpoint
from blocking import BLOCKS_ON_PURPOSE, no_blocking
from s3_fault_proxy import S3FaultProxy, running_proxy

BUCKET = "aiosagemaker-tests"


class Gate:
    """Holds the scripted invocations that name it (``{"gate": name}``) until it is opened.

    Opened from any thread (the test's); the invocations wait on the emulator's loop without
    polling. Create with :func:`gate`; every gate is opened when its test ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    async def passed(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._open:
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        await future

    def open(self) -> None:
        with self._lock:
            self._open = True
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed already
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


GATES: dict[str, Gate] = {}


async def scripted_model(body: bytes, content_type: str | None, accept: str | None) -> Any:
    """A test model steered by its JSON payload.

    Keys: ``gate`` (wait until the test opens the named :class:`Gate`), ``sleep`` (seconds of
    model latency), ``fail`` (raise with this message), ``output`` (JSON value to return),
    ``raw_b64`` (exact bytes to return), ``content_type`` (of the result; default
    application/json). Anything else is echoed.
    """
    try:
        spec = json.loads(body)
    except ValueError:
        return body, content_type or "application/octet-stream"
    if not isinstance(spec, dict):
        return json.dumps(spec).encode(), "application/json"
    if "gate" in spec:
        await GATES[spec["gate"]].passed()
    await asyncio.sleep(float(spec.get("sleep", 0)))
    if "fail" in spec:
        raise RuntimeError(spec["fail"])
    result_type = spec.get("content_type", "application/json")
    if "raw_b64" in spec:
        return base64.b64decode(spec["raw_b64"]), result_type
    return json.dumps(spec.get("output", spec)).encode(), result_type


ENDPOINTS = [
    EndpointSpec(name="scripted", model=scripted_model, max_concurrent_invocations_per_instance=64),
    EndpointSpec(
        name="no-failure-path",
        model=scripted_model,
        failure_path=False,
        max_concurrent_invocations_per_instance=8,
    ),
    EndpointSpec(name="demo", model="aiosagemaker.local.models:demo"),
    EndpointSpec(
        name="notify",
        model=scripted_model,
        success_topic="notify-success",
        error_topic="notify-error",
        max_concurrent_invocations_per_instance=64,
    ),
    EndpointSpec(
        name="notify-inline",
        model=scripted_model,
        success_topic="notify-inline-success",
        error_topic="notify-inline-error",
        include_inference_response_in=("SUCCESS_NOTIFICATION_TOPIC",),
        max_concurrent_invocations_per_instance=16,
    ),
    EndpointSpec(
        name="notify-no-failure-path",
        model=scripted_model,
        failure_path=False,
        success_topic="notify-nfp-success",
        error_topic="notify-nfp-error",
        max_concurrent_invocations_per_instance=8,
    ),
    # The endpoints README.md and docs/*.md name, for tests/test_docs.py.
    EndpointSpec(name="my-async-endpoint", model="aiosagemaker.local.models:demo"),
    EndpointSpec(
        name="my-endpoint",
        model="aiosagemaker.local.models:demo",
        success_topic="my-endpoint-success",
        error_topic="my-endpoint-error",
    ),
    # Endpoint management tests update or delete these; nothing else uses them.
    *(
        EndpointSpec(name=name, model=scripted_model)
        for name in (
            "mgmt-update",
            "mgmt-multi",
            "mgmt-delete",
            "mgmt-delete-only",
            "mgmt-model",
            "mgmt-capture",
            "mgmt-capture-off",
            "mgmt-capture-cfg",
        )
    ),
]


@pytest.fixture(scope="session")
def local() -> Iterator[LocalEndpoint]:
    """One emulator for the whole session (endpoints above, moto behind it)."""
    import boto3

    # The suite's own emulator: tests deploy their own models through CreateModel (e.g.
    # test_batch_policies), so it runs any module:function it is named, as documented.
    with LocalEndpoint(endpoints=ENDPOINTS, allow_remote_models=True) as endpoint:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint.s3_url,
            region_name=endpoint.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        yield endpoint


@pytest.fixture(scope="session")
def s3_proxy(local: LocalEndpoint) -> Iterator[S3FaultProxy]:
    with running_proxy(local.s3_url) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def runtime_proxy(local: LocalEndpoint) -> Iterator[S3FaultProxy]:
    """Records what reaches InvokeEndpointAsync (headers and body), server side."""
    with running_proxy(local.runtime_url) as proxy:
        yield proxy


@pytest.fixture
def aws_env(
    monkeypatch: pytest.MonkeyPatch,
    local: LocalEndpoint,
    s3_proxy: S3FaultProxy,
    runtime_proxy: S3FaultProxy,
) -> Iterator[dict[str, str]]:
    """The emulator's environment, with the client's S3 and runtime traffic via the proxies."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    env = dict(local.env)
    env["AWS_ENDPOINT_URL_S3"] = s3_proxy.url
    env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = runtime_proxy.url
    env["AWS_CONFIG_FILE"] = "/dev/null"
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s3_proxy.reset()
    runtime_proxy.reset()
    yield env
    s3_proxy.reset()
    runtime_proxy.reset()


@pytest.fixture
def gate() -> Iterator[Callable[[], str]]:
    """Makes named gates for the scripted model (``{"gate": name}``); opens them all at the end.

    ``name = gate()`` creates one; ``GATES[name].open()`` lets its invocations run.
    """
    names: list[str] = []

    def make() -> str:
        name = f"gate-{uuid.uuid4().hex}"
        GATES[name] = Gate()
        names.append(name)
        return name

    yield make
    for name in names:
        GATES[name].open()  # kept: invocations still queued must pass it too


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def blockbuster(request: pytest.FixtureRequest) -> Iterator[None]:
    """Async tests fail on any blocking call made on a running event loop (tests/blocking.py)."""
    purposeful = request.node.nodeid in BLOCKS_ON_PURPOSE
    if purposeful or not inspect.iscoroutinefunction(request.function):
        yield
        return
    with no_blocking() as seen:
        yield
    if seen:
        pytest.fail("blocking calls on an event loop:\n" + "\n".join(seen), pytrace=False)


@pytest.fixture
async def s3(aws_env: dict[str, str], local: LocalEndpoint) -> AsyncIterator[Any]:
    """A plain aiobotocore S3 client straight to moto (test setup and inspection)."""
    from aiobotocore.session import get_session

    async with get_session().create_client("s3", endpoint_url=local.s3_url) as client:
        yield client
