"""Endpoint management through the SageMaker control plane: the SDK predictor's pass-throughs.

Each function takes an open aiobotocore ``sagemaker`` client and an endpoint name, and follows
``sagemaker.Predictor`` (v2): ``update_endpoint`` derives a new endpoint config from the current
one (``Session.create_endpoint_config_from_existing``) and switches the endpoint to it. Unlike
the SDK nothing is cached: the endpoint's config and models are described on every call.
:class:`EndpointManager` runs them for a predictor, with a control-plane client per call.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from ._aws_errors import describe_transport, error_code, error_message
from ._clients import ClientFactory
from ._exceptions import EndpointNotFoundError, UnexpectedClientError

Json = dict[str, Any]
P = ParamSpec("P")
R = TypeVar("R")
Tags = Sequence[Mapping[str, str]] | Mapping[str, str]

IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack")
POLL_FIRST, POLL_MAX = 0.05, 15.0
"""Seconds between DescribeEndpoint calls while waiting: doubling from the first to the max."""
NAME_MAX = 63


def name_from_base(base: str) -> str:
    """``<base>-<UTC timestamp with milliseconds>``, at most 63 characters (the SDK's scheme)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%d-%H-%M-%S-%f")[:-3]
    return f"{base[: NAME_MAX - len(stamp) - 1]}-{stamp}"


def format_tags(tags: Tags | None) -> list[dict[str, str]] | None:
    """Tags as the API's ``[{"Key": ..., "Value": ...}]`` (a dict is converted)."""
    if tags is None:
        return None
    if isinstance(tags, Mapping):
        return [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    return [dict(tag) for tag in tags]


def capture_dict(data_capture_config: Any) -> Json | None:
    """A ``DataCaptureConfig`` request dict from a dict or an object with ``_to_request_dict()``."""
    if data_capture_config is None:
        return None
    if isinstance(data_capture_config, Mapping):
        return dict(data_capture_config)
    to_dict = getattr(data_capture_config, "_to_request_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, Mapping):
            return dict(result)
    raise TypeError(
        "data_capture_config must be a dict in the CreateEndpointConfig DataCaptureConfig "
        "shape or an object with _to_request_dict() (sagemaker.model_monitor.DataCaptureConfig),"
        f" got {type(data_capture_config).__name__}"
    )


def default_capture(enable: bool, bucket: str) -> Json:
    """The SDK's ``DataCaptureConfig(enable_capture)`` defaults, as a request dict."""
    return {
        "EnableCapture": enable,
        "InitialSamplingPercentage": 20,
        "DestinationS3Uri": f"s3://{bucket}/model-monitor/data-capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json"],
        },
    }


async def _call(client: Any, operation: str, **kwargs: Any) -> Json:
    """Call ``operation``; AWS errors become :class:`UnexpectedClientError`."""
    method = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
    try:
        response: Json = await getattr(client, method)(**kwargs)
    except ParamValidationError as error:
        raise ValueError(f"invalid {operation} arguments: {error}") from error
    except BotoCoreError as error:
        raise UnexpectedClientError(describe_transport(error, f"SageMaker {operation}")) from error
    except ClientError as error:
        code = error_code(error) or ""
        message = error_message(error)
        text = f"SageMaker {operation} failed with {code}: {message}"
        name = kwargs.get("EndpointName")
        missing = 'could not find endpoint "' in message.lower()
        if name and code == "ValidationException" and missing:
            raise EndpointNotFoundError(text, code=code, endpoint_name=name) from error
        raise UnexpectedClientError(text, code=code) from error
    response.pop("ResponseMetadata", None)
    return response


async def describe_endpoint(client: Any, endpoint_name: str) -> Json:
    """The ``DescribeEndpoint`` response (without ``ResponseMetadata``)."""
    return await _call(client, "DescribeEndpoint", EndpointName=endpoint_name)


async def describe_endpoint_config(client: Any, config_name: str) -> Json:
    """The ``DescribeEndpointConfig`` response (without ``ResponseMetadata``)."""
    return await _call(client, "DescribeEndpointConfig", EndpointConfigName=config_name)


_describe_config = describe_endpoint_config


async def _list_tags(client: Any, arn: str) -> list[Json]:
    tags: list[Json] = []
    kwargs: Json = {"ResourceArn": arn}
    while True:
        page = await _call(client, "ListTags", **kwargs)
        tags += page.get("Tags", [])
        if not page.get("NextToken"):
            return tags
        kwargs["NextToken"] = page["NextToken"]


async def wait_for_endpoint(
    client: Any, endpoint_name: str, config_name: str | None = None
) -> Json:
    """Poll DescribeEndpoint until the endpoint leaves Creating/Updating; return it.

    Raises:
        UnexpectedClientError: The endpoint ended in another status than InService (``code``
            is that status), or an update to ``config_name`` was rolled back.
    """
    delay = POLL_FIRST
    while True:
        endpoint = await describe_endpoint(client, endpoint_name)
        status = endpoint.get("EndpointStatus")
        if status not in IN_PROGRESS:
            break
        await anyio.sleep(delay)
        delay = min(delay * 2, POLL_MAX)
    reason = endpoint.get("FailureReason")
    if status != "InService":
        raise UnexpectedClientError(
            f"Error hosting endpoint {endpoint_name}: {status}. Reason: {reason}.", code=status
        )
    if config_name is not None and endpoint.get("EndpointConfigName") != config_name:
        raise UnexpectedClientError(
            f"The update of endpoint {endpoint_name} to endpoint config {config_name} was rolled "
            f"back; it still uses {endpoint.get('EndpointConfigName')}. Reason: {reason}.",
            code="UpdateRolledBack",
        )
    return endpoint


async def _derive_and_update(
    client: Any,
    endpoint_name: str,
    existing: Json,
    new_name: str,
    *,
    tags: list[dict[str, str]] | None = None,
    kms_key: str | None = None,
    data_capture: Json | None = None,
    variants: list[Json] | None = None,
    wait: bool = True,
) -> str:
    """Create ``new_name`` from the ``existing`` config with the changes; UpdateEndpoint to it."""
    request: Json = {
        "EndpointConfigName": new_name,
        "ProductionVariants": variants or existing["ProductionVariants"],
    }
    tags = tags or [
        tag
        for tag in await _list_tags(client, existing["EndpointConfigArn"])
        if not str(tag.get("Key", "")).startswith("aws:")
    ]
    if tags:
        request["Tags"] = tags
    if kms_key or existing.get("KmsKeyId"):
        request["KmsKeyId"] = kms_key or existing["KmsKeyId"]
    if data_capture or existing.get("DataCaptureConfig"):
        request["DataCaptureConfig"] = data_capture or existing["DataCaptureConfig"]
    for key in ("AsyncInferenceConfig", "ExplainerConfig"):
        if existing.get(key):
            request[key] = existing[key]
    await _call(client, "CreateEndpointConfig", **request)
    await _call(client, "UpdateEndpoint", EndpointName=endpoint_name, EndpointConfigName=new_name)
    if wait:
        await wait_for_endpoint(client, endpoint_name, new_name)
    return new_name


async def update_endpoint(
    client: Any,
    endpoint_name: str,
    *,
    initial_instance_count: int | None = None,
    instance_type: str | None = None,
    accelerator_type: str | None = None,
    model_name: str | None = None,
    tags: Tags | None = None,
    kms_key: str | None = None,
    data_capture_config_dict: Mapping[str, Any] | None = None,
    wait: bool = True,
) -> str:
    """``Predictor.update_endpoint``: derive a new endpoint config and switch to it.

    Giving any of instance count, instance type, accelerator or model replaces the
    ProductionVariants with a single ``AllTraffic`` variant. Returns the new config's name.

    Raises:
        ValueError: As the SDK: instance type or count missing, or several models and no
            ``model_name``.
    """
    variants = None
    changes = bool(initial_instance_count or instance_type or accelerator_type or model_name)
    if changes and (instance_type is None or initial_instance_count is None):
        raise ValueError(
            "Missing initial_instance_count and/or instance_type. Provided values: "
            f"initial_instance_count={initial_instance_count}, instance_type={instance_type}, "
            f"accelerator_type={accelerator_type}, model_name={model_name}."
        )
    endpoint = await describe_endpoint(client, endpoint_name)
    existing = await _describe_config(client, endpoint["EndpointConfigName"])
    if changes:
        if model_name is None:
            names = [v["ModelName"] for v in existing["ProductionVariants"] if "ModelName" in v]
            if len(names) > 1:
                raise ValueError(
                    "Unable to choose a default model for a new EndpointConfig because the "
                    f"endpoint has multiple models: {', '.join(names)}"
                )
            model_name = names[0]
        variant: Json = {
            "ModelName": model_name,
            "InstanceType": instance_type,
            "InitialInstanceCount": initial_instance_count,
            "VariantName": "AllTraffic",
            "InitialVariantWeight": 1,
        }
        if accelerator_type:
            variant["AcceleratorType"] = accelerator_type
        variants = [variant]
    return await _derive_and_update(
        client,
        endpoint_name,
        existing,
        name_from_base(existing["EndpointConfigName"]),
        tags=format_tags(tags),
        kms_key=kms_key,
        data_capture=capture_dict(data_capture_config_dict),
        variants=variants,
        wait=wait,
    )


async def update_data_capture_config(
    client: Any, endpoint_name: str, data_capture_config: Any
) -> str:
    """Switch the endpoint to a copy of its config with this DataCaptureConfig; wait."""
    capture = capture_dict(data_capture_config)
    endpoint = await describe_endpoint(client, endpoint_name)
    existing = await _describe_config(client, endpoint["EndpointConfigName"])
    return await _derive_and_update(
        client, endpoint_name, existing, name_from_base(endpoint_name), data_capture=capture
    )


async def set_data_capture(
    client: Any, endpoint_name: str, enable: bool, default_bucket: Callable[[], Awaitable[str]]
) -> str:
    """Flip ``EnableCapture`` on the current DataCaptureConfig (or the SDK's default one)."""
    endpoint = await describe_endpoint(client, endpoint_name)
    existing = await _describe_config(client, endpoint["EndpointConfigName"])
    current = existing.get("DataCaptureConfig")
    if current:
        capture = {**current, "EnableCapture": enable}
    else:
        capture = default_capture(enable, await default_bucket())
    return await _derive_and_update(
        client, endpoint_name, existing, name_from_base(endpoint_name), data_capture=capture
    )


async def delete_endpoint(
    client: Any, endpoint_name: str, delete_endpoint_config: bool = True
) -> None:
    """Delete the endpoint, and first its current endpoint config when asked (as the SDK)."""
    if delete_endpoint_config:
        endpoint = await describe_endpoint(client, endpoint_name)
        await _call(
            client, "DeleteEndpointConfig", EndpointConfigName=endpoint["EndpointConfigName"]
        )
    await _call(client, "DeleteEndpoint", EndpointName=endpoint_name)


async def delete_model(client: Any, endpoint_name: str) -> None:
    """Delete the models of the endpoint's current config (found through the endpoint).

    Raises:
        EndpointNotFoundError: The endpoint is gone: delete the models before the endpoint.
        UnexpectedClientError: Some models could not be deleted (the SDK's message).
    """
    try:
        endpoint = await describe_endpoint(client, endpoint_name)
    except EndpointNotFoundError as error:
        raise EndpointNotFoundError(
            f"{error.message}. delete_model() finds the models through the endpoint: call it "
            "before delete_endpoint()",
            code=error.code,
            endpoint_name=endpoint_name,
        ) from error
    config = await _describe_config(client, endpoint["EndpointConfigName"])
    failed = []
    for variant in config["ProductionVariants"]:
        try:
            await _call(client, "DeleteModel", ModelName=variant["ModelName"])
        except UnexpectedClientError:
            failed.append(variant["ModelName"])
    if failed:
        raise UnexpectedClientError(
            "One or more models cannot be deleted, please retry. \n"
            f"Failed models: {', '.join(failed)}"
        )


async def list_monitors(client: Any, endpoint_name: str) -> list[Json]:
    """The endpoint's monitoring schedule summaries (the SDK returns ModelMonitor objects)."""
    summaries: list[Json] = []
    kwargs: Json = {"EndpointName": endpoint_name}
    while True:
        page = await _call(client, "ListMonitoringSchedules", **kwargs)
        summaries += page.get("MonitoringScheduleSummaries", [])
        if not page.get("NextToken"):
            return summaries
        kwargs["NextToken"] = page["NextToken"]


async def endpoint_context(client: Any, endpoint_name: str) -> Json | None:
    """The lineage context summary whose SourceUri is the endpoint's ARN, or None."""
    endpoint = await describe_endpoint(client, endpoint_name)
    page = await _call(client, "ListContexts", SourceUri=endpoint["EndpointArn"])
    contexts: list[Json] = page.get("ContextSummaries", [])
    return contexts[0] if contexts else None


class EndpointManager:
    """Runs this module's functions on one endpoint, each with its own control-plane client."""

    def __init__(self, factory: ClientFactory, endpoint_name: str) -> None:
        self._factory = factory
        self._endpoint_name = endpoint_name

    async def __call__(
        self,
        operation: Callable[Concatenate[Any, str, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """``await operation(client, endpoint_name, *args, **kwargs)`` with a new client."""
        async with self._factory.client("sagemaker") as client:
            return await operation(client, self._endpoint_name, *args, **kwargs)
