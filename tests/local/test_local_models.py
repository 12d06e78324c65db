"""Model backends: sync/async callables, built-in models, and an HTTP model container."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from aiosagemaker.local import ConfigError, EndpointSpec, LocalEndpoint
from aiosagemaker.local.models import demo, echo

from .local_helpers import ContainerServer, client, get_object, running_container, submit


@pytest.fixture(scope="module")
def container() -> Iterator[ContainerServer]:
    with running_container() as server:
        yield server


class AsyncCallable:
    """An async callable object returning ``(bytes, content_type)``."""

    async def __call__(
        self, body: bytes, content_type: str | None, accept: str | None
    ) -> tuple[bytes, str]:
        return body[::-1], "application/x-reversed"


def returns_int(body: bytes, content_type: str | None, accept: str | None) -> int:
    return 42


@pytest.fixture(scope="module")
def models_emu(container: ContainerServer) -> Iterator[LocalEndpoint]:
    specs = [
        EndpointSpec(name="container", model=container.url),
        EndpointSpec(name="async-object", model=AsyncCallable()),
        EndpointSpec(name="bad-return", model=returns_int),
    ]
    with LocalEndpoint(specs) as local:
        yield local


def invoke(local: LocalEndpoint, endpoint: str, body: bytes, **kwargs: Any) -> dict[str, Any]:
    runtime = client("sagemaker-runtime", local.env)
    response: dict[str, Any] = submit(runtime, local.env, endpoint, body, **kwargs)
    local.wait_idle_sync(30)
    return response


def test_container_success(models_emu: LocalEndpoint, container: ContainerServer) -> None:
    s3 = client("s3", models_emu.env)
    response = invoke(
        models_emu,
        "container",
        b"shout",
        ContentType="text/plain",
        Accept="text/x-any",
        CustomAttributes="a=b",
        InferenceId="c-1",
    )
    assert get_object(s3, response["OutputLocation"]) == (b"SHOUT", "application/x-upper")
    seen = container.seen[-1]
    assert seen["content-type"] == "text/plain"
    assert seen["accept"] == "text/x-any"
    assert seen["x-amzn-sagemaker-custom-attributes"] == "a=b"
    assert seen["x-amzn-sagemaker-inference-id"] == "c-1"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b"fail",
            'ClientError: Received server error (500) from model with message "model exploded".',
        ),
        (
            b"bad-request",
            'ClientError: Received client error (400) from model with message "cannot parse".',
        ),
        (b"chunked", "did not specify the required Content-Length header"),
    ],
)
def test_container_failures(models_emu: LocalEndpoint, body: bytes, expected: str) -> None:
    s3 = client("s3", models_emu.env)
    response = invoke(models_emu, "container", body)
    reason, _ = get_object(s3, response["FailureLocation"])
    assert expected in reason.decode()


def test_container_url_defaults_to_port_8080() -> None:
    from aiosagemaker.local._models import container_base_url

    assert container_base_url("http://localhost") == "http://localhost:8080"
    assert container_base_url("http://127.0.0.1:9000/") == "http://127.0.0.1:9000"
    with pytest.raises(ConfigError):
        container_base_url("ftp://x")


def test_async_callable_object(models_emu: LocalEndpoint) -> None:
    s3 = client("s3", models_emu.env)
    response = invoke(models_emu, "async-object", b"abc")
    assert get_object(s3, response["OutputLocation"]) == (b"cba", "application/x-reversed")


def test_unsupported_return_type_is_a_model_error(models_emu: LocalEndpoint) -> None:
    s3 = client("s3", models_emu.env)
    response = invoke(models_emu, "bad-return", b"abc")
    reason, _ = get_object(s3, response["FailureLocation"])
    assert b"model returned int" in reason


def test_builtin_echo_and_demo() -> None:
    assert echo(b"x", "text/csv", None) == (b"x", "text/csv")
    assert echo(b"x", None, None) == (b"x", "application/octet-stream")
    body, content_type = demo(b'{"inputs": [1, 2.5]}', "application/json", None)
    assert json.loads(body) == {"sum": 3.5, "mean": 1.75, "count": 2}
    assert content_type == "application/json"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"inputs": "1,2"}', "non-empty list"),
        (b'{"inputs": [1, "2"]}', '"inputs"[1] is not a number'),
        (b'{"inputs": [true]}', "is not a number"),
    ],
)
def test_demo_rejects_bad_input(payload: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        demo(payload, "application/json", None)


@pytest.mark.parametrize(
    "reference",
    ["no.such.module:fn", "aiosagemaker.local.models:nope", "no-colon", "json:__name__"],
)
def test_bad_model_references_fail_early(reference: str) -> None:
    with pytest.raises(ConfigError):
        LocalEndpoint([EndpointSpec(name="x", model=reference)])
