"""AsyncPredictor against the local emulator: the SDK's predictor cases, as behaviour.

What reaches InvokeEndpointAsync is read from the recording proxy (server side), and what
reaches S3 from moto itself.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from aiosagemaker import (
    AsyncInferenceModelError,
    EndpointNotFoundError,
    PollingTimeoutError,
    StringSerializer,
    UnexpectedClientError,
    WaiterConfig,
)
from aiosagemaker.local import LocalEndpoint
from conftest import BUCKET
from helpers import FAST, key_of, make_predictor
from s3_fault_proxy import Fault, S3FaultProxy

pytestmark = pytest.mark.anyio

H = "x-amzn-sagemaker-"


def invoke_headers(proxy: S3FaultProxy) -> dict[str, str]:
    """Lower-cased headers of the single InvokeEndpointAsync request seen by the proxy."""
    posts = [h for (m, _), h in zip(proxy.requests, proxy.headers, strict=True) if m == "POST"]
    assert len(posts) == 1, proxy.requests
    return {k.lower(): v for k, v in posts[0].items()}


async def test_pass_through_input_path(
    aws_env: dict[str, str], s3: Any, runtime_proxy: S3FaultProxy, s3_proxy: S3FaultProxy
) -> None:
    await s3.put_object(Bucket=BUCKET, Key="inputs/given.json", Body=b'{"output": [1, 2]}')
    async with make_predictor() as predictor:
        response = await predictor.predict_async(input_path=f"s3://{BUCKET}/inputs/given.json")
        headers = invoke_headers(runtime_proxy)
        assert headers[H + "inputlocation"] == f"s3://{BUCKET}/inputs/given.json"
        assert headers[H + "accept"] == "application/json"
        assert headers[H + "content-type"] == "application/json"
        # an inference id is always chosen client-side, so a lost answer can still name it
        assert headers[H + "inference-id"] == response.inference_id
        assert s3_proxy.count("PUT") == 0  # nothing uploaded
        assert response.output_path.startswith("s3://")
        assert response.failure_path is not None
        assert await response == [1, 2]


async def test_predict_with_data_uploads_with_the_sdk_key_layout(
    aws_env: dict[str, str], s3: Any, runtime_proxy: S3FaultProxy
) -> None:
    async with make_predictor(inline=False) as predictor:
        result = await predictor.predict({"output": {"ok": True}})
    assert result == {"ok": True}
    location = invoke_headers(runtime_proxy)[H + "inputlocation"]
    key = key_of(location)
    assert location.startswith(f"s3://{BUCKET}/")
    assert re.fullmatch(
        r"async-endpoint-inputs/scripted-\d{6}-\d{4}/"
        r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}",
        key,
    ), key
    head = await s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "application/json"


async def test_data_with_input_path_uploads_to_exactly_that_key(
    aws_env: dict[str, str], s3: Any, runtime_proxy: S3FaultProxy
) -> None:
    target = f"s3://{BUCKET}/chosen/key.json"
    async with make_predictor() as predictor:
        assert await predictor.predict({"output": 7}, input_path=target) == 7
    assert invoke_headers(runtime_proxy)[H + "inputlocation"] == target
    stored = await s3.get_object(Bucket=BUCKET, Key="chosen/key.json")
    assert await stored["Body"].read() == b'{"output": 7}'


async def test_null_failure_path(aws_env: dict[str, str]) -> None:
    async with make_predictor("no-failure-path") as predictor:
        response = await predictor.predict_async({"output": "fine"})
        assert response.failure_path is None
        assert await response == "fine"
        failing = await predictor.predict_async({"fail": "no failure path configured"})
        # Without a FailureLocation a model error leaves nothing to find: the wait times out.
        with pytest.raises(PollingTimeoutError, match=r"No result at s3://.* after polling for"):
            await failing.get_result(WaiterConfig(max_attempts=3, delay=0.05))


async def test_model_error_and_timeout_messages(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        with pytest.raises(AsyncInferenceModelError, match=r"Model returned error: .*boom"):
            await predictor.predict({"fail": "boom"})
        slow = await predictor.predict_async({"sleep": 30, "output": 1})
        with pytest.raises(
            PollingTimeoutError,
            match=re.escape(f"No result at {slow.output_path} after polling for "),
        ) as caught:
            await slow.get_result(WaiterConfig(max_attempts=2, delay=0.05))
        assert caught.value.attempts == 2
        assert caught.value.inference_id == slow.inference_id


@pytest.mark.parametrize("method", ["predict", "predict_async"])
async def test_neither_data_nor_input_path(aws_env: dict[str, str], method: str) -> None:
    async with make_predictor() as predictor:
        with pytest.raises(ValueError, match="Please provide input data or input Amazon S3"):
            await getattr(predictor, method)()


async def test_inference_id_is_sent_and_exposed(
    aws_env: dict[str, str], runtime_proxy: S3FaultProxy
) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": 1}, inference_id="my-id-42")
    assert invoke_headers(runtime_proxy)[H + "inference-id"] == "my-id-42"
    assert response.inference_id == "my-id-42"


async def test_service_generated_inference_id_is_exposed(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        first = await predictor.predict_async({"output": 1})
        second = await predictor.predict_async({"output": 1})
    assert first.inference_id and second.inference_id
    assert first.inference_id != second.inference_id


class StrAccept:
    """A custom deserializer whose ACCEPT is a plain string (the SDK splits it into letters)."""

    ACCEPT = "text/plain"

    def deserialize(self, stream: Any, content_type: str) -> Any:
        return stream.read().decode()


async def test_accept_string_is_sent_as_is_and_tuples_are_joined(
    aws_env: dict[str, str], runtime_proxy: S3FaultProxy
) -> None:
    async with make_predictor(deserializer=StrAccept()) as predictor:
        await predictor.predict_async({"output": 1})
    assert invoke_headers(runtime_proxy)[H + "accept"] == "text/plain"
    runtime_proxy.reset()

    class TupleAccept(StrAccept):
        ACCEPT = ("application/json", "text/csv")  # type: ignore[assignment]

    async with make_predictor(deserializer=TupleAccept()) as predictor:
        await predictor.predict_async({"output": 1})
    assert invoke_headers(runtime_proxy)[H + "accept"] == "application/json, text/csv"


async def test_initial_args_pass_through_and_override(
    aws_env: dict[str, str], runtime_proxy: S3FaultProxy
) -> None:
    args = {
        "ContentType": "application/x-custom",
        "Accept": "text/csv",
        "CustomAttributes": "trace=1",
        "RequestTTLSeconds": 600,
        "InvocationTimeoutSeconds": 120,
    }
    async with make_predictor(serializer=StringSerializer()) as predictor:
        await predictor.predict_async('{"output": 1}', initial_args=args)
    headers = invoke_headers(runtime_proxy)
    assert headers[H + "content-type"] == "application/x-custom"
    assert headers[H + "accept"] == "text/csv"
    assert headers[H + "custom-attributes"] == "trace=1"
    assert headers[H + "requestttlseconds"] == "600"
    assert headers[H + "invocationtimeoutseconds"] == "120"


async def test_default_bucket_comes_from_sts(
    aws_env: dict[str, str], runtime_proxy: S3FaultProxy, local: LocalEndpoint
) -> None:
    async with make_predictor(default_bucket=None, inline=False) as predictor:
        assert await predictor.predict({"output": "x"}) == "x"
        assert predictor.default_bucket == f"sagemaker-{local.region}-{local.account_id}"
    location = invoke_headers(runtime_proxy)[H + "inputlocation"]
    assert location.startswith(f"s3://sagemaker-{local.region}-{local.account_id}/")


async def test_default_bucket_is_created_only_when_allowed(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, local: LocalEndpoint
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    expected = f"sagemaker-eu-west-3-{local.account_id}"
    async with make_predictor(default_bucket=None, inline=False) as predictor:
        with pytest.raises(UnexpectedClientError, match="create_default_bucket=True") as caught:
            await predictor.predict_async({"output": 1})
    assert expected in str(caught.value)
    async with make_predictor(
        default_bucket=None, create_default_bucket=True, inline=False
    ) as predictor:
        assert await predictor.predict({"output": 2}) == 2
        assert predictor.default_bucket == expected


async def test_unknown_endpoint(aws_env: dict[str, str], s3_proxy: S3FaultProxy) -> None:
    async with make_predictor("no-such-endpoint") as predictor:
        with pytest.raises(EndpointNotFoundError, match="Check the endpoint name") as caught:
            await predictor.predict_async(input_path=f"s3://{BUCKET}/whatever")
    assert caught.value.endpoint_name == "no-such-endpoint"
    assert caught.value.code == "ValidationError"
    assert "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME" in str(caught.value)


async def test_missing_bucket_fails_before_invoking(
    aws_env: dict[str, str], runtime_proxy: S3FaultProxy
) -> None:
    async with make_predictor(default_bucket="no-such-bucket-here", inline=False) as predictor:
        with pytest.raises(UnexpectedClientError, match="does not exist") as caught:
            await predictor.predict_async({"output": 1})
    assert caught.value.code == "NoSuchBucket"
    assert "no-such-bucket-here" in str(caught.value)
    assert runtime_proxy.count("POST") == 0


async def test_access_denied_on_upload(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy, runtime_proxy: S3FaultProxy
) -> None:
    s3_proxy.add(Fault("PUT", "/async-endpoint-inputs/", status=403, code="AccessDenied"))
    async with make_predictor(inline=False) as predictor:
        with pytest.raises(UnexpectedClientError, match="s3:PutObject") as caught:
            await predictor.predict_async({"output": 1})
    assert caught.value.code == "AccessDenied"
    assert runtime_proxy.count("POST") == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_path": "bucket/key"}, ValueError, "input_path must be an S3 URI"),
        ({"input_path": "https://bucket/key"}, ValueError, "s3://bucket/key"),
        ({"input_path": "s3://bucket-only"}, ValueError, "both a bucket and a key"),
        ({"data": 1, "initial_args": {"InputLocation": "s3://b/k"}}, ValueError, "input_path="),
        ({"data": 1, "initial_args": ["x"]}, TypeError, "initial_args must be a dict"),
        ({"data": 1, "initial_args": {"Bogus": 1}}, ValueError, "Unknown parameter"),
    ],
)
async def test_bad_arguments(
    aws_env: dict[str, str], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    async with make_predictor() as predictor:
        with pytest.raises(error, match=match):
            await predictor.predict_async(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"endpoint_name": ""}, ValueError, "endpoint_name"),
        ({"serializer": object()}, TypeError, "serializer must have CONTENT_TYPE"),
        ({"deserializer": object()}, TypeError, "deserializer must have ACCEPT"),
        ({"waiter_config": 5}, TypeError, "waiter_config should be a WaiterConfig object"),
        ({"inline": "yes"}, ValueError, "inline must be"),
        ({"max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"failure_check_every": 0}, ValueError, "failure_check_every"),
        ({"failure_check_every": True}, ValueError, "failure_check_every"),
        ({"session": object()}, TypeError, "session must be an aioboto3.Session"),
        ({"client_config": {"retries": 1}}, TypeError, "client_config must be"),
    ],
)
def test_bad_constructor_arguments(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    name = kwargs.pop("endpoint_name", "scripted")
    with pytest.raises(error, match=match):
        make_predictor(name, **kwargs)


async def test_predict_rejects_a_bad_waiter_config(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        with pytest.raises(ValueError, match="should be a WaiterConfig"):
            await predictor.predict({"output": 1}, waiter_config={"delay": 1})  # type: ignore[arg-type]


async def test_predictor_works_without_context_manager(aws_env: dict[str, str]) -> None:
    predictor = make_predictor()
    try:
        assert await predictor.predict({"output": 3}, waiter_config=FAST) == 3
    finally:
        await predictor.close()
    # closed predictors reopen on use
    try:
        assert await predictor.predict({"output": 4}) == 4
    finally:
        await predictor.close()
