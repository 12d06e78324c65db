"""What an endpoint made through the control plane runs: its model and its async settings.

``CreateModel`` describes a container image the emulator cannot run, so the model is chosen
this way, first match wins:

1. ``PrimaryContainer.Environment["AIOSAGEMAKER_LOCAL_MODEL"]``: ``package.module:function``
   or a model-container URL;
2. ``PrimaryContainer.Image`` when it is such a reference itself;
3. the emulator's default model for created endpoints (``aiosagemaker.local.models:echo``).
"""

from __future__ import annotations

import re
from typing import Any

from ._models import is_container_url
from ._spec import EndpointSpec, ResolvedEndpoint, resolve_endpoint

Json = dict[str, Any]

MODEL_ENV_VAR = "AIOSAGEMAKER_LOCAL_MODEL"
DEFAULT_CREATED_MODEL = "aiosagemaker.local.models:echo"
_CALLABLE_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def _container(model: Json) -> Json:
    container = model.get("PrimaryContainer")
    if not container and model.get("Containers"):
        container = model["Containers"][0]
    return container if isinstance(container, dict) else {}


def model_reference(model: Json, default: str = DEFAULT_CREATED_MODEL) -> str:
    """The model reference a ``CreateModel`` body stands for (see the module docstring)."""
    container = _container(model)
    environment = container.get("Environment") or {}
    from_env = environment.get(MODEL_ENV_VAR) if isinstance(environment, dict) else None
    if isinstance(from_env, str) and from_env:
        return from_env
    image = container.get("Image")
    if isinstance(image, str) and (is_container_url(image) or _CALLABLE_REFERENCE.fullmatch(image)):
        return image
    return default


def endpoint_from_config(
    name: str, config: Json, model: str, *, region: str, account_id: str
) -> ResolvedEndpoint:
    """The endpoint ``CreateEndpoint`` makes of an endpoint config with AsyncInferenceConfig.

    Without ``S3FailurePath`` the endpoint has none (as on SageMaker); without
    ``S3OutputPath`` it gets the emulator's default output path.

    Raises:
        ConfigError: A path, topic or concurrency value is invalid.
    """
    async_config = config.get("AsyncInferenceConfig") or {}
    output = async_config.get("OutputConfig") or {}
    notification = output.get("NotificationConfig") or {}
    client = async_config.get("ClientConfig") or {}
    variants = config.get("ProductionVariants") or [{}]
    spec = EndpointSpec(
        name=name,
        model=model,
        output_path=output.get("S3OutputPath"),
        failure_path=output.get("S3FailurePath") or False,
        success_topic=notification.get("SuccessTopic"),
        error_topic=notification.get("ErrorTopic"),
        include_inference_response_in=tuple(notification.get("IncludeInferenceResponseIn", ())),
        max_concurrent_invocations_per_instance=client.get(
            "MaxConcurrentInvocationsPerInstance", 4
        ),
        instance_count=variants[0].get("InitialInstanceCount", 1),
    )
    return resolve_endpoint(spec, region=region, account_id=account_id)
