"""InvokeEndpointAsync through real clients: boto3 (sync), aiobotocore and the AWS CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from aiosagemaker.local import LocalEndpoint

from .local_helpers import INPUT_BUCKET, get_object, object_exists, raw_invoke, split, submit

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def put_input(s3: Any, body: bytes) -> str:
    key = f"in/{uuid.uuid4()}.json"
    s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=body)
    return f"s3://{INPUT_BUCKET}/{key}"


def test_boto3_sync_input_location(emu: LocalEndpoint, runtime: Any, s3: Any) -> None:
    location = put_input(s3, b'{"inputs": [1, 2, 3, 4]}')
    response = runtime.invoke_endpoint_async(
        EndpointName="demo",
        InputLocation=location,
        ContentType="application/json",
        Accept="application/json",
        CustomAttributes="trace=1",
        InferenceId="my-inference-1",
        RequestTTLSeconds=600,
        InvocationTimeoutSeconds=60,
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert response["InferenceId"] == "my-inference-1"
    spec = emu.endpoint("demo")
    output = response["OutputLocation"]
    match = re.fullmatch(re.escape(spec.output_path) + f"/({UUID})\\.out", output)
    assert match, output
    assert spec.failure_path is not None
    assert response["FailureLocation"] == f"{spec.failure_path}/{match.group(1)}-error.out"
    assert match.group(1) != response["InferenceId"]
    emu.wait_idle_sync(30)
    body, content_type = get_object(s3, output)
    assert json.loads(body) == {"sum": 10, "mean": 2.5, "count": 4}
    assert content_type == "application/json"
    assert not object_exists(s3, response["FailureLocation"])


def test_generated_inference_id_is_a_uuid(runtime: Any, s3: Any) -> None:
    response = runtime.invoke_endpoint_async(EndpointName="echo", InputLocation=put_input(s3, b"x"))
    assert re.fullmatch(UUID, response["InferenceId"])


def test_boto3_inline_body_keeps_content_type(emu: LocalEndpoint, runtime: Any, s3: Any) -> None:
    response = submit(runtime, emu.env, "echo", b"\x00\x01binary", ContentType="application/x-bin")
    emu.wait_idle_sync(30)
    assert get_object(s3, response["OutputLocation"]) == (b"\x00\x01binary", "application/x-bin")


@pytest.mark.anyio
async def test_aiobotocore_inline_body(env: dict[str, str], emu: LocalEndpoint) -> None:
    from aiobotocore.session import get_session

    session = get_session()
    async with (
        session.create_client("sagemaker-runtime") as runtime,
        session.create_client("s3") as s3,
    ):
        if (
            "Body"
            not in runtime.meta.service_model.operation_model(
                "InvokeEndpointAsync"
            ).input_shape.members
        ):
            pytest.skip("this botocore cannot send an inline Body (needs botocore >= 1.43.29)")
        response = await runtime.invoke_endpoint_async(
            EndpointName="async-upper", Body=b"hello inline", ContentType="text/plain"
        )
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
        await emu.wait_idle(30)
        bucket, key = split(response["OutputLocation"])
        obj = await s3.get_object(Bucket=bucket, Key=key)
        async with obj["Body"] as stream:
            assert await stream.read() == b"HELLO INLINE"
        # bytes without a content type and no Accept: the result is octet-stream
        assert obj["ContentType"] == "application/octet-stream"


def _aws_cli() -> str:
    candidate = Path(sys.executable).parent / "aws"
    found = str(candidate) if candidate.exists() else shutil.which("aws")
    if not found:
        pytest.skip("the AWS CLI is not installed next to this Python (nox installs awscli)")
    return found


@pytest.mark.awscli
def test_aws_cli_invoke_endpoint_async(
    emu: LocalEndpoint, env: dict[str, str], s3: Any, tmp_path: Path
) -> None:
    aws = _aws_cli()
    location = put_input(s3, b'{"inputs": [5]}')
    proc_env = {**os.environ, **emu.env, "AWS_PAGER": ""}
    completed = subprocess.run(
        [
            aws,
            "sagemaker-runtime",
            "invoke-endpoint-async",
            "--endpoint-name",
            "demo",
            "--input-location",
            location,
            "--content-type",
            "application/json",
            "--inference-id",
            "from-the-cli",
            "--output",
            "json",
        ],
        env=proc_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    response = json.loads(completed.stdout)
    assert response["InferenceId"] == "from-the-cli"
    emu.wait_idle_sync(30)
    body, _ = get_object(s3, response["OutputLocation"])
    assert json.loads(body) == {"sum": 5, "mean": 5.0, "count": 1}


def test_unknown_endpoint_is_a_validation_error(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationError) as info:
        runtime.invoke_endpoint_async(EndpointName="no-such-endpoint", InputLocation="s3://b/k")
    assert info.value.response["Error"]["Message"] == (
        "Endpoint no-such-endpoint of account 123456789012 not found."
    )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_missing_input_is_accepted_then_fails(emu: LocalEndpoint, runtime: Any, s3: Any) -> None:
    missing_key = runtime.invoke_endpoint_async(
        EndpointName="echo", InputLocation=f"s3://{INPUT_BUCKET}/does/not/exist"
    )
    missing_bucket = runtime.invoke_endpoint_async(
        EndpointName="echo", InputLocation="s3://no-such-bucket-here/x"
    )
    emu.wait_idle_sync(30)
    for response in (missing_key, missing_bucket):
        assert not object_exists(s3, response["OutputLocation"])
        reason, content_type = get_object(s3, response["FailureLocation"])
        assert b"Failed to download the input data" in reason
        assert content_type.startswith("text/plain")


def test_model_error_writes_failure_object(emu: LocalEndpoint, runtime: Any, s3: Any) -> None:
    before = emu.stats("demo")
    response = runtime.invoke_endpoint_async(
        EndpointName="demo", InputLocation=put_input(s3, b'{"inputs": []}')
    )
    emu.wait_idle_sync(30)
    reason, _ = get_object(s3, response["FailureLocation"])
    assert reason.decode() == (
        'ClientError: Received server error (500) from model with message "ValueError: '
        'demo model: "inputs" must be a non-empty list of numbers".'
    )
    assert not object_exists(s3, response["OutputLocation"])
    assert emu.stats("demo").failed == before.failed + 1


def test_sync_model_returning_str_uses_accept(emu: LocalEndpoint, runtime: Any, s3: Any) -> None:
    plain = submit(runtime, emu.env, "sync-text", b"abc")
    typed = submit(runtime, emu.env, "sync-text", b"xyz", Accept="text/x")
    emu.wait_idle_sync(30)
    assert get_object(s3, plain["OutputLocation"]) == (b"cba", "text/plain; charset=utf-8")
    assert get_object(s3, typed["OutputLocation"]) == (b"zyx", "text/x")


@pytest.mark.parametrize(
    ("extension", "filename", "output_suffix", "failure_suffix"),
    [
        ("batch-7/part", None, "/batch-7/part/{uuid}.out", "/batch-7/part/{uuid}-error.out"),
        (None, "result.json", "/result.json", "/result.json-error.out"),
        ("a/b/", "r1", "/a/b/r1", "/a/b/r1-error.out"),
    ],
)
def test_output_naming(
    emu: LocalEndpoint,
    runtime: Any,
    s3: Any,
    extension: str | None,
    filename: str | None,
    output_suffix: str,
    failure_suffix: str,
) -> None:
    kwargs: dict[str, str] = {}
    if extension:
        kwargs["S3OutputPathExtension"] = extension
    if filename:
        kwargs["Filename"] = filename
    location = put_input(s3, b"named")
    members = runtime.meta.service_model.operation_model("InvokeEndpointAsync").input_shape.members
    if "Filename" in members:
        response = runtime.invoke_endpoint_async(
            EndpointName="echo", InputLocation=location, **kwargs
        )
    else:  # botocore < 1.42.54 cannot send these headers: send them over plain HTTP
        headers = {f"X-Amzn-SageMaker-{k}": v for k, v in kwargs.items()}
        headers["X-Amzn-SageMaker-InputLocation"] = location
        status, raw_headers, _ = raw_invoke(emu.runtime_url, "echo", headers)
        assert status == 202
        response = {
            "OutputLocation": raw_headers["x-amzn-sagemaker-outputlocation"],
            "FailureLocation": raw_headers["x-amzn-sagemaker-failurelocation"],
        }
    spec = emu.endpoint("echo")
    name = re.escape(spec.output_path) + re.escape(output_suffix).replace(
        re.escape("{uuid}"), f"({UUID})"
    )
    match = re.fullmatch(name, response["OutputLocation"])
    assert match, response["OutputLocation"]
    expected_failure = f"{spec.failure_path}{failure_suffix}"
    if match.groups():
        expected_failure = expected_failure.replace("{uuid}", match.group(1))
    assert response["FailureLocation"] == expected_failure
    emu.wait_idle_sync(30)
    assert get_object(s3, response["OutputLocation"])[0] == b"named"
