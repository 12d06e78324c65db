"""Endpoints made through the control plane (CreateModel, CreateEndpointConfig, CreateEndpoint)
and the paginated List calls, with a plain sync boto3 ``sagemaker`` client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aiosagemaker.local import EndpointSpec, LocalEndpoint

from .local_helpers import (
    client,
    get_object,
    notification,
    receive_until,
    submit,
    subscribe_queue,
    wait_for_object,
)

START_UP = [
    EndpointSpec(name=f"list-{i:02d}", model="aiosagemaker.local.models:echo") for i in range(12)
]


def upper(body: bytes, content_type: str | None, accept: str | None) -> bytes:
    """The model the created endpoint names through its environment."""
    return body.upper()


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(START_UP, allow_remote_models=True) as local:  # any module:function
        yield local


@pytest.fixture
def sm(emulator: LocalEndpoint) -> Any:
    return client("sagemaker", emulator.env)


def wait_status(sm: Any, name: str, timeout: float = 30) -> dict[str, Any]:
    """DescribeEndpoint until the endpoint has left ``Creating``."""
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] != "Creating":
            return described
        assert time.monotonic() < deadline, f"{name} stayed Creating"
        time.sleep(0.02)


def test_list_endpoints_pages_through_everything(sm: Any) -> None:
    names: list[str] = []
    kwargs: dict[str, Any] = {"MaxResults": 5, "SortBy": "Name", "SortOrder": "Ascending"}
    pages = 0
    while True:
        response = sm.list_endpoints(**kwargs)
        pages += 1
        assert len(response["Endpoints"]) <= 5
        names += [e["EndpointName"] for e in response["Endpoints"]]
        if "NextToken" not in response:
            break
        kwargs["NextToken"] = response["NextToken"]
    assert names == sorted(names)
    assert {e.name for e in START_UP} <= set(names)
    assert len(names) == len(set(names))  # no endpoint twice across pages
    assert pages >= 3
    summary = sm.list_endpoints(NameContains="list-03")["Endpoints"]
    assert [e["EndpointName"] for e in summary] == ["list-03"]
    assert summary[0]["EndpointStatus"] == "InService"
    assert set(summary[0]) >= {"EndpointArn", "CreationTime", "LastModifiedTime"}


def test_list_endpoints_default_page_and_paginator(sm: Any) -> None:
    assert len(sm.list_endpoints()["Endpoints"]) == 10  # SageMaker's default MaxResults
    paginator = sm.get_paginator("list_endpoints")
    names = [
        e["EndpointName"]
        for p in paginator.paginate(PaginationConfig={"PageSize": 4})
        for e in p["Endpoints"]
    ]
    assert {e.name for e in START_UP} <= set(names)
    assert len(names) == len(set(names))


def test_list_errors(sm: Any) -> None:
    for kwargs in ({"NextToken": "not-a-token"}, {"MaxResults": 101}, {"SortBy": "Size"}):
        with pytest.raises(ClientError) as caught:
            sm.list_endpoints(**kwargs)
        assert caught.value.response["Error"]["Code"] == "ValidationException"
    token = sm.list_endpoints(MaxResults=1)["NextToken"]
    with pytest.raises(ClientError, match="another query"):
        sm.list_endpoints(MaxResults=1, NextToken=token, NameContains="list")


def test_create_model_config_endpoint_then_invoke(sm: Any, emulator: LocalEndpoint) -> None:
    env = emulator.env
    sm.create_model(
        ModelName="made-model",
        PrimaryContainer={
            "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-image:latest",
            "Environment": {"AIOSAGEMAKER_LOCAL_MODEL": f"{__name__}:upper"},
        },
        ExecutionRoleArn="arn:aws:iam::123456789012:role/any",
    )
    assert sm.describe_model(ModelName="made-model")["ModelArn"].endswith("model/made-model")
    assert "made-model" in [m["ModelName"] for m in sm.list_models(MaxResults=100)["Models"]]
    sm.create_endpoint_config(
        EndpointConfigName="made-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "made-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        AsyncInferenceConfig={
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
            "OutputConfig": {
                "S3OutputPath": "s3://made-bucket/out",
                "S3FailurePath": "s3://made-bucket/failed",
                "NotificationConfig": {"SuccessTopic": "arn:aws:sns:us-east-1:123456789012:made"},
            },
        },
    )
    arn = sm.create_endpoint(EndpointName="made", EndpointConfigName="made-config")["EndpointArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/made"
    described = wait_status(sm, "made")
    assert described["EndpointStatus"] == "InService", described
    assert described["AsyncInferenceConfig"]["ClientConfig"] == {
        "MaxConcurrentInvocationsPerInstance": 2
    }
    assert "made" in [e["EndpointName"] for e in sm.list_endpoints(MaxResults=100)["Endpoints"]]
    sqs, sns = client("sqs", env), client("sns", env)
    queue_url = subscribe_queue(
        sqs, sns, "arn:aws:sns:us-east-1:123456789012:made", "made-results", raw=True
    )
    runtime = client("sagemaker-runtime", env)
    response = submit(runtime, env, "made", b"deployed")
    assert response["OutputLocation"].startswith("s3://made-bucket/out/")
    assert response["FailureLocation"].startswith("s3://made-bucket/failed/")
    s3 = client("s3", env)
    wait_for_object(s3, response["OutputLocation"], 60)
    assert get_object(s3, response["OutputLocation"])[0] == b"DEPLOYED"
    [body] = receive_until(sqs, queue_url, 1, 60)
    message = notification(body, raw=True)
    assert message["inferenceId"] == response["InferenceId"]
    assert message["responseParameters"]["outputLocation"] == response["OutputLocation"]
    assert emulator.stats("made").completed == 1


def test_create_endpoint_errors(sm: Any) -> None:
    def code_of(**kwargs: Any) -> str:
        with pytest.raises(ClientError) as caught:
            sm.create_endpoint(**kwargs)
        return str(caught.value.response["Error"]["Message"])

    assert "already existing" in code_of(
        EndpointName="list-00", EndpointConfigName="list-00-config"
    )
    assert "Could not find endpoint configuration" in code_of(
        EndpointName="new-one", EndpointConfigName="no-such-config"
    )
    assert "endpointName" in code_of(EndpointName="bad_name", EndpointConfigName="list-00-config")
    sm.create_endpoint_config(
        EndpointConfigName="realtime-config",
        ProductionVariants=[{"VariantName": "v", "ModelName": "list-00-model"}],
    )
    assert "async endpoints only" in code_of(
        EndpointName="realtime", EndpointConfigName="realtime-config"
    )


def test_created_endpoint_with_an_unimportable_model_fails(sm: Any) -> None:
    sm.create_model(
        ModelName="broken-model",
        PrimaryContainer={"Image": "no_such_module_xyz:predict"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="broken-config",
        ProductionVariants=[{"VariantName": "v", "ModelName": "broken-model"}],
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://made-bucket/broken"}},
    )
    sm.create_endpoint(EndpointName="broken", EndpointConfigName="broken-config")
    described = wait_status(sm, "broken")
    assert described["EndpointStatus"] == "Failed"
    assert "no_such_module_xyz" in described["FailureReason"]
