"""Contract of the emulator's control-plane subset, with a plain sync boto3 ``sagemaker`` client.

The client finds the emulator only through AWS_ENDPOINT_URL_SAGEMAKER. This module runs its own
emulator because it updates and deletes endpoints.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aiosagemaker.local import EndpointSpec, LocalEndpoint

from .local_helpers import client, submit

ACCOUNT = "123456789012"
ENDPOINTS = [
    EndpointSpec(name="ctl-echo", model="aiosagemaker.local.models:echo", instance_count=2),
    EndpointSpec(name="ctl-update", model="aiosagemaker.local.models:echo"),
    EndpointSpec(name="ctl-delete", model="aiosagemaker.local.models:echo"),
    EndpointSpec(name="x" * 63, model="aiosagemaker.local.models:echo"),
]


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(ENDPOINTS) as local:
        yield local


@pytest.fixture
def sm(emulator: LocalEndpoint, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for key, value in emulator.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    return boto3.client("sagemaker")


def error_of(call: Any, **kwargs: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def wait_in_service(sm: Any, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] != "Updating":
            return described
        time.sleep(0.02)
    raise AssertionError(f"{name} stayed Updating")


def test_env_points_the_control_plane_at_the_emulator(emulator: LocalEndpoint) -> None:
    assert emulator.env["AWS_ENDPOINT_URL_SAGEMAKER"] == emulator.runtime_url


def test_startup_resources(sm: Any, emulator: LocalEndpoint) -> None:
    endpoint = sm.describe_endpoint(EndpointName="ctl-echo")
    arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ctl-echo"
    assert endpoint["EndpointArn"] == arn
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == "ctl-echo-config"
    assert endpoint["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    async_config = emulator.endpoint("ctl-echo").async_inference_config()
    assert endpoint["AsyncInferenceConfig"] == async_config
    config = sm.describe_endpoint_config(EndpointConfigName="ctl-echo-config")
    assert config["EndpointConfigArn"].endswith(":endpoint-config/ctl-echo-config")
    assert config["AsyncInferenceConfig"] == async_config
    (variant,) = config["ProductionVariants"]
    assert variant["ModelName"] == "ctl-echo-model"
    assert variant["InitialInstanceCount"] == 2
    model = sm.describe_model(ModelName="ctl-echo-model")
    assert model["ModelArn"] == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/ctl-echo-model"
    assert sm.list_tags(ResourceArn=config["EndpointConfigArn"])["Tags"] == []
    contexts = sm.list_contexts(SourceUri=arn)["ContextSummaries"]
    assert len(contexts) == 1
    assert contexts[0]["ContextType"] == "Endpoint"
    assert contexts[0]["Source"]["SourceUri"] == arn
    assert sm.list_contexts(SourceUri=arn + "-nope")["ContextSummaries"] == []


def test_long_endpoint_names_get_names_within_limits(sm: Any) -> None:
    endpoint = sm.describe_endpoint(EndpointName="x" * 63)
    assert len(endpoint["EndpointConfigName"]) <= 63
    assert endpoint["EndpointConfigName"].endswith("-config")
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert len(config["ProductionVariants"][0]["ModelName"]) <= 63


def test_create_config_tags_and_update(sm: Any, emulator: LocalEndpoint) -> None:
    base = sm.describe_endpoint_config(EndpointConfigName="ctl-update-config")
    new_output = "s3://ctl-updated/out"
    async_config = {
        **base["AsyncInferenceConfig"],
        "OutputConfig": {"S3OutputPath": new_output, "S3FailurePath": "s3://ctl-updated/fail"},
    }
    created = sm.create_endpoint_config(
        EndpointConfigName="ctl-update-v2",
        ProductionVariants=[{**base["ProductionVariants"][0], "InitialInstanceCount": 3}],
        AsyncInferenceConfig=async_config,
        Tags=[{"Key": "a", "Value": "1"}],
    )
    arn = created["EndpointConfigArn"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "a", "Value": "1"}]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}])
    tags = sm.list_tags(ResourceArn=arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("a", "2"), ("b", "3")]

    assert sm.update_endpoint(EndpointName="ctl-update", EndpointConfigName="ctl-update-v2")[
        "EndpointArn"
    ].endswith(":endpoint/ctl-update")
    updating = sm.describe_endpoint(EndpointName="ctl-update")
    assert updating["EndpointStatus"] == "Updating"
    assert updating["EndpointConfigName"] == "ctl-update-v2"
    status, code, message = error_of(
        sm.update_endpoint, EndpointName="ctl-update", EndpointConfigName="ctl-update-config"
    )
    assert (status, code) == (400, "ValidationException")
    assert "Cannot update in-progress endpoint" in message

    done = wait_in_service(sm, "ctl-update")
    assert done["EndpointStatus"] == "InService"
    assert done["ProductionVariants"][0]["CurrentInstanceCount"] == 3
    assert done["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == new_output
    # The endpoint keeps serving, now writing to the new output path.
    runtime = client("sagemaker-runtime", emulator.env)
    response = submit(runtime, emulator.env, "ctl-update", b"after update")
    assert response["OutputLocation"].startswith(new_output + "/")
    # A config in use can be deleted; the endpoint keeps describing what it serves.
    sm.delete_endpoint_config(EndpointConfigName="ctl-update-v2")
    kept = sm.describe_endpoint(EndpointName="ctl-update")
    assert kept["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == new_output


def test_delete_endpoint_and_model(sm: Any, emulator: LocalEndpoint) -> None:
    sm.delete_endpoint(EndpointName="ctl-delete")
    status, code, message = error_of(sm.describe_endpoint, EndpointName="ctl-delete")
    assert (status, code) == (400, "ValidationException")
    assert message == (
        f'Could not find endpoint "arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ctl-delete".'
    )
    runtime = client("sagemaker-runtime", emulator.env)
    with pytest.raises(ClientError) as caught:
        submit(runtime, emulator.env, "ctl-delete", b"gone")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "not found" in caught.value.response["Error"]["Message"]
    assert error_of(sm.delete_endpoint, EndpointName="ctl-delete")[1] == "ValidationException"
    sm.delete_model(ModelName="ctl-delete-model")
    _, code, message = error_of(sm.describe_model, ModelName="ctl-delete-model")
    assert code == "ValidationException" and "Could not find model" in message
    sm.delete_endpoint_config(EndpointConfigName="ctl-delete-config")
    _, _, message = error_of(sm.describe_endpoint_config, EndpointConfigName="ctl-delete-config")
    assert "Could not find endpoint configuration" in message


def test_monitoring_schedules(sm: Any) -> None:
    assert sm.list_monitoring_schedules()["MonitoringScheduleSummaries"] == []
    sm.create_monitoring_schedule(
        MonitoringScheduleName="ctl-monitor",
        MonitoringScheduleConfig={
            "MonitoringJobDefinitionName": "ctl-job",
            "MonitoringType": "DataQuality",
        },
    )
    names = [
        s["MonitoringScheduleName"]
        for s in sm.list_monitoring_schedules()["MonitoringScheduleSummaries"]
    ]
    assert names == ["ctl-monitor"]
    assert (
        sm.list_monitoring_schedules(EndpointName="ctl-echo")["MonitoringScheduleSummaries"] == []
    )
    sm.delete_monitoring_schedule(MonitoringScheduleName="ctl-monitor")
    assert error_of(sm.delete_monitoring_schedule, MonitoringScheduleName="ctl-monitor")[1] == (
        "ResourceNotFound"
    )


def test_error_shapes(sm: Any) -> None:
    _, code, message = error_of(
        sm.create_endpoint_config,
        EndpointConfigName="ctl-echo-config",
        ProductionVariants=[{"VariantName": "v", "ModelName": "ctl-echo-model"}],
    )
    assert code == "ValidationException" and "already existing" in message
    _, code, message = error_of(
        sm.create_endpoint_config,
        EndpointConfigName="ctl-bad",
        ProductionVariants=[{"VariantName": "v", "ModelName": "no-such-model"}],
    )
    assert code == "ValidationException" and "no-such-model" in message
    _, code, _ = error_of(sm.list_tags, ResourceArn="arn:aws:sagemaker:us-east-1:1:model/none")
    assert code == "ValidationException"
    # Operations outside the subset are refused as the JSON protocol does.
    status, code, _ = error_of(sm.list_training_jobs)
    assert (status, code) == (400, "UnknownOperationException")


def raw_post(url: str, target: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = urllib.request.Request(url + "/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_raw_wire_format(emulator: LocalEndpoint) -> None:
    url = emulator.runtime_url
    status, body = raw_post(url, "SageMaker.DescribeEndpoint", b'{"EndpointName": "ctl-echo"}')
    assert status == 200 and body["EndpointName"] == "ctl-echo"
    assert isinstance(body["CreationTime"], float)  # epoch seconds, as the JSON protocol
    assert raw_post(url, "SageMaker.DescribeEndpoint", b"{}") == (
        400,
        {
            "__type": "ValidationException",
            "message": "Value null at 'endpointName' failed to satisfy constraint: "
            "Member must not be null",
        },
    )
    assert raw_post(url, None, b"{}")[1]["__type"] == "UnknownOperationException"
    assert raw_post(url, "SageMaker.NoSuchThing", b"{}")[0] == 400
    assert raw_post(url, "SageMaker.DescribeEndpoint", b"{nope")[1]["__type"] == (
        "SerializationException"
    )
