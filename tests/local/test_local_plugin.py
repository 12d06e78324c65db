"""The pytest plugin's fixtures, and that importing the plugin stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from aiosagemaker.local import EndpointSpec, LocalEndpoint

from .local_helpers import submit


@pytest.fixture
def local_async_endpoint_specs() -> Sequence[EndpointSpec]:
    return [EndpointSpec(name="plugin-demo", model="aiosagemaker.local.models:demo")]


def test_fixture_serves_overridden_specs(
    local_async_endpoint: LocalEndpoint, local_aws_env: dict[str, str]
) -> None:
    import boto3

    assert [e.name for e in local_async_endpoint.endpoints] == ["plugin-demo"]
    runtime = boto3.client("sagemaker-runtime")  # found through local_aws_env only
    response = submit(runtime, local_aws_env, "plugin-demo", b'{"inputs": [2]}')
    local_async_endpoint.wait_idle_sync(30)
    s3 = boto3.client("s3")
    bucket, _, key = response["OutputLocation"][5:].partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert json.loads(body) == {"sum": 2, "mean": 2.0, "count": 1}
    sts = boto3.client("sts")
    assert sts.get_caller_identity()["Account"] == local_async_endpoint.account_id


@pytest.mark.aiosagemaker_local(
    endpoints=[EndpointSpec(name="marked", model="aiosagemaker.local.models:echo")],
    time_scale=0.01,
)
def test_marker_overrides(local_async_endpoint: LocalEndpoint) -> None:
    assert [e.name for e in local_async_endpoint.endpoints] == ["marked"]
    assert local_async_endpoint.time_scale == 0.01


@pytest.mark.anyio
async def test_async_context_manager_and_sdk_default_bucket() -> None:
    async with LocalEndpoint(
        EndpointSpec(name="ctx", model="aiosagemaker.local.models:echo")
    ) as local:
        from aiobotocore.session import get_session

        env: dict[str, Any] = local.env
        async with get_session().create_client(
            "s3",
            endpoint_url=local.s3_url,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        ) as s3:
            names = {b["Name"] for b in (await s3.list_buckets())["Buckets"]}
        assert {"aiosagemaker-local", "sagemaker-us-east-1-123456789012"} <= names
        assert local.runtime_url.startswith("http://127.0.0.1:")
    assert "ctx" in repr(local)


def test_plugin_import_is_light() -> None:
    code = (
        "import sys, aiosagemaker.local.pytest_plugin\n"
        "heavy = [m for m in ('moto', 'aiosagemaker.local._emulator', 'aiosagemaker.local._server')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert completed.stdout.strip() == ""
