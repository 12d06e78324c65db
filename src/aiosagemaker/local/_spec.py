"""Endpoint configuration: what the user declares and what the emulator resolves it to.

:class:`EndpointSpec` mirrors ``CreateEndpointConfig.AsyncInferenceConfig`` (output and failure
paths, notification topics, ``MaxConcurrentInvocationsPerInstance``) plus the instance count and
the model. :func:`resolve_endpoint` fills in defaults and turns topic names into ARNs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiosagemaker._limits import (
    ENDPOINT_NAME_MAX,
    MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE_MAX,
    MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE_MIN,
)

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_BUCKET = "aiosagemaker-local"
DEFAULT_MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE = 4
"""Used when a spec leaves the value out (real SageMaker then picks one itself)."""

SUCCESS_NOTIFICATION_TOPIC = "SUCCESS_NOTIFICATION_TOPIC"
ERROR_NOTIFICATION_TOPIC = "ERROR_NOTIFICATION_TOPIC"

ENDPOINT_NAME_RE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
_S3_URI_RE = re.compile(r"(https|s3)://([^/]+)/?(.*)")
_TOPIC_NAME_RE = re.compile(r"[a-zA-Z0-9_.-]{1,256}")
_TOPIC_ARN_RE = re.compile(r"arn:aws[a-z\-]*:sns:[a-z0-9\-]*:[0-9]{12}:[a-zA-Z0-9_.-]+")
_INCLUDE_ALIASES = {
    "success": SUCCESS_NOTIFICATION_TOPIC,
    "error": ERROR_NOTIFICATION_TOPIC,
    SUCCESS_NOTIFICATION_TOPIC.lower(): SUCCESS_NOTIFICATION_TOPIC,
    ERROR_NOTIFICATION_TOPIC.lower(): ERROR_NOTIFICATION_TOPIC,
}

ModelRef = str | Callable[..., Any]
"""``"package.module:function"``, a container URL (``http://host:port``) or a callable."""


class ConfigError(ValueError):
    """The emulator's configuration (spec, CLI flag, config file, model reference) is invalid."""


@dataclass(frozen=True)
class EndpointSpec:
    """An async endpoint, configured like ``CreateEndpointConfig.AsyncInferenceConfig``.

    Args:
        name: Endpoint name (same rules as SageMaker: ≤63 characters, letters, digits, ``-``).
        model: ``"package.module:function"``, a model-container URL such as
            ``"http://127.0.0.1:8080"``, or a (sync or async) callable
            ``fn(body, content_type, accept)``.
        output_path: ``S3OutputPath``; default
            ``s3://aiosagemaker-local/async-endpoint-outputs/<name>``.
        failure_path: ``S3FailurePath``; default
            ``s3://aiosagemaker-local/async-endpoint-failures/<name>``. ``False`` configures an
            endpoint without one (no FailureLocation is returned and no failure object written).
        success_topic: SNS topic name or ARN for ``SuccessTopic`` (created on start).
        error_topic: SNS topic name or ARN for ``ErrorTopic`` (created on start).
        include_inference_response_in: ``IncludeInferenceResponseIn`` values
            (``SUCCESS_NOTIFICATION_TOPIC`` / ``ERROR_NOTIFICATION_TOPIC``; ``success`` / ``error``
            are accepted as short forms).
        max_concurrent_invocations_per_instance: ``ClientConfig`` value, 1-1000 (default 4).
        instance_count: Number of instances; the concurrency cap is the product of the two.
            ``0`` models an endpoint scaled to zero: invocations are accepted and queued,
            nothing runs until ``LocalEndpoint.set_instance_count`` (or the control plane's
            ``UpdateEndpointWeightsAndCapacities``) adds instances.
    """

    name: str
    model: ModelRef
    output_path: str | None = None
    failure_path: str | Literal[False] | None = None
    success_topic: str | None = None
    error_topic: str | None = None
    include_inference_response_in: Sequence[str] = field(default=())
    max_concurrent_invocations_per_instance: int = DEFAULT_MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE
    instance_count: int = 1


@dataclass(frozen=True)
class ResolvedEndpoint:
    """An :class:`EndpointSpec` with every default filled in and topics as ARNs."""

    name: str
    model: ModelRef
    output_path: str
    failure_path: str | None
    success_topic_arn: str | None
    error_topic_arn: str | None
    include_inference_response_in: tuple[str, ...]
    max_concurrent_invocations_per_instance: int
    instance_count: int

    @property
    def max_concurrency(self) -> int:
        """``MaxConcurrentInvocationsPerInstance * instance_count``."""
        return self.max_concurrent_invocations_per_instance * self.instance_count

    def async_inference_config(self) -> dict[str, Any]:
        """The endpoint's ``AsyncInferenceConfig`` as ``DescribeEndpointConfig`` shows it."""
        output: dict[str, Any] = {"S3OutputPath": self.output_path}
        if self.failure_path is not None:
            output["S3FailurePath"] = self.failure_path
        notification: dict[str, Any] = {}
        if self.success_topic_arn:
            notification["SuccessTopic"] = self.success_topic_arn
        if self.error_topic_arn:
            notification["ErrorTopic"] = self.error_topic_arn
        if self.include_inference_response_in:
            notification["IncludeInferenceResponseIn"] = list(self.include_inference_response_in)
        if notification:
            output["NotificationConfig"] = notification
        return {
            "ClientConfig": {
                "MaxConcurrentInvocationsPerInstance": self.max_concurrent_invocations_per_instance
            },
            "OutputConfig": output,
        }


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` (or ``https://host/bucket/prefix``) into bucket and key."""
    match = _S3_URI_RE.fullmatch(uri)
    if match is None:
        raise ConfigError(f"not an S3 URI: {uri!r} (expected s3://bucket/prefix)")
    scheme, host, rest = match.groups()
    if scheme == "s3":
        return host, rest
    virtual = re.fullmatch(r"(.+)\.s3[.-].*amazonaws\.com", host)
    if virtual:
        return virtual.group(1), rest
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ConfigError(f"cannot find a bucket in {uri!r}")
    return bucket, key


def topic_arn(topic: str, *, region: str, account_id: str) -> str:
    """Turn a topic name into its ARN; an ARN is validated and returned as is."""
    if topic.startswith("arn:"):
        if not _TOPIC_ARN_RE.fullmatch(topic):
            raise ConfigError(f"not a valid SNS topic ARN: {topic!r}")
        return topic
    if not _TOPIC_NAME_RE.fullmatch(topic):
        raise ConfigError(f"not a valid SNS topic name: {topic!r}")
    return f"arn:aws:sns:{region}:{account_id}:{topic}"


def check_endpoint_url(url: str, what: str) -> str:
    """Validate an ``http(s)://host[:port]`` service URL (``--s3-endpoint-url`` and the like).

    Raises:
        ConfigError: Not an http or https URL with a host and a valid port.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or 0 < parts.port <= 65535
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigError(f"{what}: not an http(s)://host[:port] URL: {url!r}")
    return url.rstrip("/")


def _s3_path(value: str, what: str) -> str:
    path = value.rstrip("/")
    split_s3_uri(path)
    if not path.startswith("s3://"):
        raise ConfigError(f"{what} must be an s3:// URI, got {value!r}")
    return path


def resolve_endpoint(
    spec: EndpointSpec, *, region: str = DEFAULT_REGION, account_id: str = DEFAULT_ACCOUNT_ID
) -> ResolvedEndpoint:
    """Validate ``spec`` and fill in defaults.

    Raises:
        ConfigError: A field is out of range or malformed.
    """
    name = spec.name
    if not (
        isinstance(name, str)
        and len(name) <= ENDPOINT_NAME_MAX
        and ENDPOINT_NAME_RE.fullmatch(name)
    ):
        raise ConfigError(
            f"invalid endpoint name {name!r}: use up to {ENDPOINT_NAME_MAX} letters, digits "
            "and hyphens, starting and ending with a letter or digit"
        )
    per_instance = spec.max_concurrent_invocations_per_instance
    low, high = (
        MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE_MIN,
        MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE_MAX,
    )
    if isinstance(per_instance, bool) or not isinstance(per_instance, int):
        raise ConfigError(f"max_concurrent_invocations_per_instance must be an integer ({name})")
    if not low <= per_instance <= high:
        raise ConfigError(
            f"max_concurrent_invocations_per_instance must be between {low} and {high}, "
            f"got {per_instance} ({name})"
        )
    count = spec.instance_count
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigError(
            f"instance_count must be an integer >= 0 (0: scaled to zero), got {count!r} ({name})"
        )
    if not (callable(spec.model) or (isinstance(spec.model, str) and spec.model)):
        raise ConfigError(
            f"model of endpoint {name!r} must be 'module:function', a URL or a callable"
        )
    output = _s3_path(
        spec.output_path or f"s3://{DEFAULT_BUCKET}/async-endpoint-outputs/{name}", "output_path"
    )
    failure: str | None
    if spec.failure_path is False:
        failure = None
    elif spec.failure_path is None:
        failure = f"s3://{DEFAULT_BUCKET}/async-endpoint-failures/{name}"
    else:
        failure = _s3_path(spec.failure_path, "failure_path")
    include: list[str] = []
    for item in spec.include_inference_response_in:
        value = _INCLUDE_ALIASES.get(str(item).strip().lower())
        if value is None:
            raise ConfigError(
                f"include_inference_response_in: unknown value {item!r} "
                f"(use {SUCCESS_NOTIFICATION_TOPIC} or {ERROR_NOTIFICATION_TOPIC})"
            )
        if value not in include:
            include.append(value)

    def arn(topic: str | None) -> str | None:
        return topic_arn(topic, region=region, account_id=account_id) if topic else None

    return ResolvedEndpoint(
        name=name,
        model=spec.model,
        output_path=output,
        failure_path=failure,
        success_topic_arn=arn(spec.success_topic),
        error_topic_arn=arn(spec.error_topic),
        include_inference_response_in=tuple(include),
        max_concurrent_invocations_per_instance=per_instance,
        instance_count=count,
    )
