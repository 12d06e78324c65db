"""AsyncPredictor's endpoint-management pass-throughs (the SDK's cases) against the emulator.

Effects are checked through the control plane (a plain aiobotocore ``sagemaker`` client that
finds the emulator through AWS_ENDPOINT_URL_SAGEMAKER) and through the runtime. Tests that
update or delete an endpoint use their own ``mgmt-*`` endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError

from aiosagemaker import EndpointNotFoundError, UnexpectedClientError
from conftest import BUCKET
from helpers import make_predictor

pytestmark = pytest.mark.anyio

CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 50,
    "DestinationS3Uri": f"s3://{BUCKET}/custom-capture",
    "CaptureOptions": [{"CaptureMode": "Input"}],
}


class SdkStyleCaptureConfig:
    """Stands in for ``sagemaker.model_monitor.DataCaptureConfig`` (only its request dict)."""

    def __init__(self, enable_capture: bool, sampling_percentage: int, destination: str) -> None:
        self.enable_capture = enable_capture
        self.sampling_percentage = sampling_percentage
        self.destination_s3_uri = destination

    def _to_request_dict(self) -> dict[str, Any]:
        return {
            "EnableCapture": self.enable_capture,
            "InitialSamplingPercentage": self.sampling_percentage,
            "DestinationS3Uri": self.destination_s3_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }


@pytest.fixture
async def sagemaker(aws_env: dict[str, str]) -> AsyncIterator[Any]:
    """A plain aiobotocore control-plane client (endpoint from the environment only)."""
    from aiobotocore.session import get_session

    async with get_session().create_client("sagemaker") as client:
        yield client


async def current_config(sagemaker: Any, endpoint: str) -> dict[str, Any]:
    described = await sagemaker.describe_endpoint(EndpointName=endpoint)
    config: dict[str, Any] = await sagemaker.describe_endpoint_config(
        EndpointConfigName=described["EndpointConfigName"]
    )
    return config


async def assert_serves(endpoint: str) -> None:
    async with make_predictor(endpoint) as predictor:
        assert await predictor.predict({"output": endpoint}) == endpoint


async def test_update_endpoint_no_args(sagemaker: Any) -> None:
    before = await current_config(sagemaker, "mgmt-update")
    await sagemaker.add_tags(
        ResourceArn=before["EndpointConfigArn"],
        Tags=[{"Key": "team", "Value": "a"}, {"Key": "aws:owner", "Value": "x"}],
    )
    async with make_predictor("mgmt-update") as predictor:
        await predictor.update_endpoint()
        described = await predictor.describe_endpoint()
    assert described["EndpointStatus"] == "InService"
    new_name = described["EndpointConfigName"]
    assert new_name != before["EndpointConfigName"]
    assert new_name.startswith(before["EndpointConfigName"][:39] + "-")
    after = await sagemaker.describe_endpoint_config(EndpointConfigName=new_name)
    assert after["ProductionVariants"] == before["ProductionVariants"]
    assert after["AsyncInferenceConfig"] == before["AsyncInferenceConfig"]
    tags = await sagemaker.list_tags(ResourceArn=after["EndpointConfigArn"])
    assert tags["Tags"] == [{"Key": "team", "Value": "a"}]  # aws: tags are not copied
    await assert_serves("mgmt-update")


async def test_update_endpoint_all_args(sagemaker: Any) -> None:
    async with make_predictor("mgmt-update") as predictor:
        await predictor.update_endpoint(
            initial_instance_count=2,
            instance_type="ml.c5.xlarge",
            accelerator_type="ml.eia1.medium",
            model_name="mgmt-update-model",
            tags=[{"Key": "team", "Value": "b"}],
            kms_key="my-kms-key",
            data_capture_config_dict=CAPTURE,
            wait=True,
        )
        described = await predictor.describe_endpoint()
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert described["DataCaptureConfig"]["CaptureStatus"] == "Started"
    config = await current_config(sagemaker, "mgmt-update")
    assert config["ProductionVariants"] == [
        {
            "ModelName": "mgmt-update-model",
            "InstanceType": "ml.c5.xlarge",
            "InitialInstanceCount": 2,
            "VariantName": "AllTraffic",
            "InitialVariantWeight": 1.0,
            "AcceleratorType": "ml.eia1.medium",
        }
    ]
    assert config["KmsKeyId"] == "my-kms-key"
    assert config["DataCaptureConfig"] == CAPTURE
    assert "AsyncInferenceConfig" in config
    tags = await sagemaker.list_tags(ResourceArn=config["EndpointConfigArn"])
    assert tags["Tags"] == [{"Key": "team", "Value": "b"}]
    await assert_serves("mgmt-update")


async def test_update_endpoint_argument_errors(sagemaker: Any) -> None:
    async with make_predictor("mgmt-multi") as predictor:
        with pytest.raises(
            ValueError, match=r"Missing initial_instance_count and/or instance_type"
        ):
            await predictor.update_endpoint(initial_instance_count=1)
        with pytest.raises(
            ValueError, match=r"Missing initial_instance_count and/or instance_type"
        ):
            await predictor.update_endpoint(instance_type="ml.m5.large")
        config = await current_config(sagemaker, "mgmt-multi")
        variant = config["ProductionVariants"][0]
        await sagemaker.create_endpoint_config(
            EndpointConfigName="mgmt-multi-two",
            ProductionVariants=[variant, {**variant, "VariantName": "Second"}],
            AsyncInferenceConfig=config["AsyncInferenceConfig"],
        )
        await sagemaker.update_endpoint(
            EndpointName="mgmt-multi", EndpointConfigName="mgmt-multi-two"
        )
        await wait_in_service(sagemaker, "mgmt-multi")
        with pytest.raises(ValueError, match=r"Unable to choose a default model .* multiple"):
            await predictor.update_endpoint(initial_instance_count=1, instance_type="ml.m5.large")
        await predictor.update_endpoint(
            initial_instance_count=1, instance_type="ml.m5.large", model_name="mgmt-multi-model"
        )
    config = await current_config(sagemaker, "mgmt-multi")
    assert [v["VariantName"] for v in config["ProductionVariants"]] == ["AllTraffic"]


async def test_update_endpoint_without_wait(sagemaker: Any) -> None:
    async with make_predictor("mgmt-multi") as predictor:
        await predictor.update_endpoint(wait=False)
        described = await sagemaker.describe_endpoint(EndpointName="mgmt-multi")
        assert described["EndpointStatus"] == "Updating"  # the emulator updates for 0.2 s
        await wait_in_service(sagemaker, "mgmt-multi")
        with pytest.raises(EndpointNotFoundError, match="Could not find endpoint"):
            await make_predictor("no-such-endpoint").update_endpoint()


async def test_delete_endpoint_with_config(sagemaker: Any) -> None:
    async with make_predictor("mgmt-delete") as predictor:
        await predictor.delete_endpoint()
        with pytest.raises(EndpointNotFoundError) as caught:
            await predictor.describe_endpoint()
        assert caught.value.endpoint_name == "mgmt-delete"
        with pytest.raises(EndpointNotFoundError):
            await predictor.predict_async({"output": 1})
        with pytest.raises(EndpointNotFoundError, match=r"before delete_endpoint\(\)"):
            await predictor.delete_model()
    with pytest.raises(ClientError, match="Could not find endpoint configuration"):
        await sagemaker.describe_endpoint_config(EndpointConfigName="mgmt-delete-config")
    await sagemaker.describe_model(ModelName="mgmt-delete-model")  # models are kept


async def test_delete_endpoint_only(sagemaker: Any) -> None:
    async with make_predictor("mgmt-delete-only") as predictor:
        await predictor.delete_endpoint(delete_endpoint_config=False)
        with pytest.raises(EndpointNotFoundError):
            await predictor.predict_async({"output": 1})
        with pytest.raises(EndpointNotFoundError):
            await predictor.delete_endpoint(delete_endpoint_config=False)
    config = await sagemaker.describe_endpoint_config(EndpointConfigName="mgmt-delete-only-config")
    assert config["ProductionVariants"][0]["ModelName"] == "mgmt-delete-only-model"


async def test_delete_model(sagemaker: Any) -> None:
    async with make_predictor("mgmt-model") as predictor:
        await predictor.delete_model()
        with pytest.raises(ClientError, match="Could not find model"):
            await sagemaker.describe_model(ModelName="mgmt-model-model")
        with pytest.raises(UnexpectedClientError, match="Failed models: mgmt-model-model"):
            await predictor.delete_model()
        assert (await predictor.describe_endpoint())["EndpointStatus"] == "InService"


async def test_enable_data_capture(sagemaker: Any) -> None:
    before = await current_config(sagemaker, "mgmt-capture")
    assert "DataCaptureConfig" not in before
    async with make_predictor("mgmt-capture") as predictor:
        await predictor.enable_data_capture()
        described = await predictor.describe_endpoint()
    assert described["DataCaptureConfig"] == {
        "EnableCapture": True,
        "CaptureStatus": "Started",
        "CurrentSamplingPercentage": 20,
        "DestinationS3Uri": f"s3://{BUCKET}/model-monitor/data-capture",
    }
    config = await current_config(sagemaker, "mgmt-capture")
    assert config["EndpointConfigName"].startswith("mgmt-capture-")
    assert config["DataCaptureConfig"]["CaptureOptions"] == [
        {"CaptureMode": "Input"},
        {"CaptureMode": "Output"},
    ]
    assert config["ProductionVariants"] == before["ProductionVariants"]
    await assert_serves("mgmt-capture")


async def test_disable_data_capture(sagemaker: Any) -> None:
    async with make_predictor("mgmt-capture-off") as predictor:
        await predictor.update_data_capture_config(CAPTURE)
        await predictor.disable_data_capture()
        described = await predictor.describe_endpoint()
    assert described["DataCaptureConfig"]["CaptureStatus"] == "Stopped"
    config = await current_config(sagemaker, "mgmt-capture-off")
    assert config["DataCaptureConfig"] == {**CAPTURE, "EnableCapture": False}
    await assert_serves("mgmt-capture-off")


async def test_update_data_capture_config(sagemaker: Any) -> None:
    destination = f"s3://{BUCKET}/sdk-capture"
    async with make_predictor("mgmt-capture-cfg") as predictor:
        await predictor.update_data_capture_config(SdkStyleCaptureConfig(True, 30, destination))
        described = await predictor.describe_endpoint()
        assert described["DataCaptureConfig"]["CurrentSamplingPercentage"] == 30
        assert described["DataCaptureConfig"]["DestinationS3Uri"] == destination
        await predictor.update_data_capture_config(CAPTURE)
        config = await current_config(sagemaker, "mgmt-capture-cfg")
        assert config["DataCaptureConfig"] == CAPTURE
        with pytest.raises(TypeError, match="_to_request_dict"):
            await predictor.update_data_capture_config("capture please")


async def test_endpoint_context(aws_env: dict[str, str]) -> None:
    async with make_predictor("scripted") as predictor:
        context = await predictor.endpoint_context()
        described = await predictor.describe_endpoint()
    assert context is not None
    assert context["Source"]["SourceUri"] == described["EndpointArn"]
    assert context["ContextType"] == "Endpoint"
    assert context["ContextName"].startswith("scripted-")


async def test_list_monitors(sagemaker: Any) -> None:
    async with make_predictor("demo") as predictor:
        assert await predictor.list_monitors() == []
        await sagemaker.create_monitoring_schedule(
            MonitoringScheduleName="demo-monitor",
            MonitoringScheduleConfig={
                "MonitoringJobDefinition": {
                    "MonitoringInputs": [
                        {
                            "EndpointInput": {
                                "EndpointName": "demo",
                                "LocalPath": "/opt/ml/processing/input",
                            }
                        }
                    ],
                    "MonitoringOutputConfig": {
                        "MonitoringOutputs": [
                            {
                                "S3Output": {
                                    "S3Uri": f"s3://{BUCKET}/monitor",
                                    "LocalPath": "/opt/ml/processing/output",
                                }
                            }
                        ]
                    },
                    "MonitoringResources": {
                        "ClusterConfig": {
                            "InstanceCount": 1,
                            "InstanceType": "ml.m5.large",
                            "VolumeSizeInGB": 1,
                        }
                    },
                    "MonitoringAppSpecification": {"ImageUri": "monitor-image"},
                    "RoleArn": "arn:aws:iam::123456789012:role/monitor",
                },
            },
        )
        try:
            monitors = await predictor.list_monitors()
        finally:
            await sagemaker.delete_monitoring_schedule(MonitoringScheduleName="demo-monitor")
        assert [m["MonitoringScheduleName"] for m in monitors] == ["demo-monitor"]
        assert monitors[0]["EndpointName"] == "demo"
        assert isinstance(monitors[0], dict)
        assert await predictor.list_monitors() == []


async def wait_in_service(sagemaker: Any, endpoint: str) -> None:
    for _ in range(200):
        described = await sagemaker.describe_endpoint(EndpointName=endpoint)
        if described["EndpointStatus"] == "InService":
            return
        await anyio.sleep(0.02)
    raise AssertionError(f"{endpoint} did not return to InService")
