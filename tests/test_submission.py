"""InvokeEndpointAsync runs at most once: lost answers, timeouts, 5xx, retried rejections.

Faults are injected by the proxy in front of the emulator's runtime (server side); the
emulator's ``accepted`` counter proves how many inferences ran.
"""

from __future__ import annotations

import pickle
import socket
from typing import Any

import botocore.loaders
import pytest
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from aiosagemaker import SubmissionUncertainError, UnexpectedClientError
from aiosagemaker.local import LocalEndpoint
from helpers import make_predictor
from s3_fault_proxy import Fault, S3FaultProxy

pytestmark = pytest.mark.anyio

INVOKE = "/async-invocations"
H = "x-amzn-sagemaker-"
_MODEL = botocore.loaders.Loader().load_service_model("sagemaker-runtime", "service-2")
FILENAME = "Filename" in _MODEL["shapes"]["InvokeEndpointAsyncInput"]["members"]


def accepted(local: LocalEndpoint) -> int:
    return local.stats("scripted").accepted


def posts(proxy: S3FaultProxy) -> list[dict[str, str]]:
    """Lower-cased headers of every InvokeEndpointAsync request the proxy saw."""
    return [
        {k.lower(): v for k, v in headers.items()}
        for (method, path), headers in zip(proxy.requests, proxy.headers, strict=True)
        if method == "POST" and INVOKE in path
    ]


async def test_lost_answer_is_uncertain_and_never_resent(
    aws_env: dict[str, str], local: LocalEndpoint, runtime_proxy: S3FaultProxy
) -> None:
    async with make_predictor() as predictor:
        assert await predictor.predict({"output": "first"}) == "first"  # learns the naming
        before = accepted(local)
        runtime_proxy.add(Fault("POST", INVOKE, after_forward="drop", times=1))
        with pytest.raises(SubmissionUncertainError) as caught:
            await predictor.predict_async({"output": "lost"})
        error = caught.value
        assert isinstance(error.__cause__, ConnectionClosedError)
        assert accepted(local) == before + 1  # it was accepted, and botocore did not resend
        assert len(posts(runtime_proxy)) == 2
        sent = posts(runtime_proxy)[-1]
        assert error.inference_id == sent[H + "inference-id"]
        assert "may or may not have been accepted" in str(error)
        if FILENAME:
            assert error.output_path is not None
            assert error.output_path.endswith("/" + sent[H + "filename"])
            assert error.response is not None
            assert await error.response == "lost"  # the caller can still wait for it
        else:
            assert error.output_path is None and error.response is None
        assert pickle.loads(pickle.dumps(error)).response is None


async def test_read_timeout_is_uncertain(
    aws_env: dict[str, str], local: LocalEndpoint, runtime_proxy: S3FaultProxy
) -> None:
    runtime_proxy.add(Fault("POST", INVOKE, after_forward="hang", hang=3, times=1))
    before = accepted(local)
    async with make_predictor(client_config=AioConfig(read_timeout=0.5)) as predictor:
        with pytest.raises(SubmissionUncertainError) as caught:
            await predictor.predict_async({"output": 1}, inference_id="chosen-id")
        error = caught.value
        assert isinstance(error.__cause__, ReadTimeoutError)
        assert error.inference_id == "chosen-id"
        (sent,) = posts(runtime_proxy)
        assert accepted(local) == before + 1
        if FILENAME:  # nothing answered yet: the output path comes from the endpoint config
            extension = sent[H + "s3outputpathextension"]
            base = local.endpoint("scripted").output_path
            assert error.output_path == f"{base}/{extension}/{sent[H + 'filename']}"
            assert error.failure_path is None
            assert error.response is not None
            assert await error.response == 1
        else:
            assert error.output_path is None and error.response is None


async def test_a_5xx_that_proves_nothing_is_not_resent(
    aws_env: dict[str, str], runtime_proxy: S3FaultProxy
) -> None:
    runtime_proxy.add(Fault("POST", INVOKE, status=500, code="InternalFailure", document="json"))
    async with make_predictor() as predictor:
        with pytest.raises(SubmissionUncertainError) as caught:
            await predictor.predict_async({"output": 1})
    assert isinstance(caught.value.__cause__, ClientError)
    assert len(posts(runtime_proxy)) == 1


@pytest.mark.parametrize(
    ("status", "code"), [(503, "ServiceUnavailable"), (400, "ThrottlingException")]
)
async def test_rejections_that_prove_nothing_ran_are_resent(
    aws_env: dict[str, str],
    local: LocalEndpoint,
    runtime_proxy: S3FaultProxy,
    status: int,
    code: str,
) -> None:
    runtime_proxy.add(Fault("POST", INVOKE, status=status, code=code, document="json", times=2))
    before = accepted(local)
    async with make_predictor() as predictor:
        assert await predictor.predict({"output": "ok"}) == "ok"
    sent = posts(runtime_proxy)
    assert len(sent) == 3
    assert len({h[H + "inference-id"] for h in sent}) == 1  # the same request each time
    assert accepted(local) == before + 1


async def test_rejections_outlasting_the_retries_are_typed(
    aws_env: dict[str, str], runtime_proxy: S3FaultProxy
) -> None:
    runtime_proxy.add(Fault("POST", INVOKE, status=503, code="ServiceUnavailable", document="json"))
    async with make_predictor(transient_retries=1) as predictor:
        with pytest.raises(UnexpectedClientError) as caught:
            await predictor.predict_async({"output": 1})
    assert caught.value.code == "ServiceUnavailable"
    assert isinstance(caught.value.__cause__, ClientError)
    assert len(posts(runtime_proxy)) == 2


async def test_at_least_once_resends_a_lost_answer(
    aws_env: dict[str, str], local: LocalEndpoint, runtime_proxy: S3FaultProxy
) -> None:
    runtime_proxy.add(Fault("POST", INVOKE, after_forward="drop", times=1))
    before = accepted(local)
    async with make_predictor(submit_retries="at-least-once") as predictor:
        response = await predictor.predict_async({"output": "twice"})
        assert await response == "twice"
    sent = posts(runtime_proxy)
    assert len(sent) == 2
    assert accepted(local) == before + 2  # the duplicate the caller chose over a gap
    assert sent[0][H + "inference-id"] == sent[1][H + "inference-id"] == response.inference_id
    if FILENAME:  # the duplicate writes the same location
        assert sent[0][H + "filename"] == sent[1][H + "filename"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_runtime_is_an_async_inference_error(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
    async with make_predictor(transient_retries=1) as predictor:
        with pytest.raises(UnexpectedClientError, match="could not be reached") as caught:
            await predictor.predict_async(input_path="s3://aiosagemaker-tests/some/input")
    assert isinstance(caught.value.__cause__, EndpointConnectionError)


def test_submit_retries_is_validated() -> None:
    with pytest.raises(ValueError, match="'at-most-once' or 'at-least-once'"):
        make_predictor(submit_retries="always")


def test_uncertain_error_pickles_without_its_response() -> None:
    error = SubmissionUncertainError(
        "lost", inference_id="i", output_path="s3://b/o.out", response=object()
    )
    copy: Any = pickle.loads(pickle.dumps(error))
    assert (copy.inference_id, copy.output_path, copy.response, str(copy)) == (
        "i",
        "s3://b/o.out",
        None,
        "lost",
    )
