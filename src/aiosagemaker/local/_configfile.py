"""Load the emulator's config file: TOML (Python 3.11+) or JSON, same structure.

```toml
[emulator]            # all optional
host = "127.0.0.1"
port = 8085                # InvokeEndpointAsync and the control plane
aws_port = 4566            # moto's S3, SNS, SQS and STS
time_scale = 1.0
s3_endpoint_url = "http://127.0.0.1:9000"

[faults]              # all optional
model_latency = "uniform:0.05,0.2"
unavailable_rate = 0.0
accept_delay = 0.0
seed = 7

[[endpoints]]
name = "demo"
model = "aiosagemaker.local.models:demo"   # or container_url = "http://127.0.0.1:8080"
failure_path = false                        # or an s3:// URI; omit for the default
success_topic = "demo-success"
include_inference_response_in = ["SUCCESS_NOTIFICATION_TOPIC"]
max_concurrent_invocations_per_instance = 4
instance_count = 1
```
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._faults import FaultConfig, Latency
from ._spec import ConfigError, EndpointSpec

if sys.version_info >= (3, 11):
    import tomllib

    def _loads_toml(text: str) -> Any:
        return tomllib.loads(text)
else:  # pragma: no cover - Python 3.10 has no tomllib
    _loads_toml = None

_EMULATOR_KEYS = {
    "host",
    "port",
    "aws_port",
    "time_scale",
    "s3_endpoint_url",
    "sns_endpoint_url",
    "notification_delivery",
    "state_dir",
    "allow_remote_models",
    "allow_non_loopback",
}
_FAULT_KEYS = {
    "model_latency",
    "unavailable_rate",
    "internal_failure_rate",
    "accept_delay",
    "seed",
}
_ENDPOINT_KEYS = {
    "name",
    "model",
    "container_url",
    "output_path",
    "failure_path",
    "success_topic",
    "error_topic",
    "include_inference_response_in",
    "max_concurrent_invocations_per_instance",
    "instance_count",
}


@dataclass
class EmulatorConfig:
    """Everything a config file can set (``None`` = not set)."""

    endpoints: list[EndpointSpec] = field(default_factory=list)
    host: str | None = None
    port: int | None = None
    aws_port: int | None = None
    time_scale: float | None = None
    s3_endpoint_url: str | None = None
    sns_endpoint_url: str | None = None
    notification_delivery: str | None = None
    state_dir: str | None = None
    allow_remote_models: bool | None = None
    allow_non_loopback: bool | None = None
    faults: FaultConfig | None = None


def _table(data: dict[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{key}] must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{key}]: {', '.join(unknown)}")
    return table


def _typed(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise ConfigError(f"{what} has the wrong type: {value!r}")
    return value


def faults_from_mapping(table: dict[str, Any]) -> FaultConfig:
    """Build a :class:`FaultConfig` from config-file values."""
    latency = table.get("model_latency", 0.0)
    if isinstance(latency, str):
        latency = Latency.parse(latency)
    else:
        latency = Latency.fixed(_typed(latency, (int, float), "faults.model_latency"))
    seed = table.get("seed")
    return FaultConfig(
        model_latency=latency,
        unavailable_rate=float(_typed(table.get("unavailable_rate", 0.0), (int, float), "rate")),
        accept_delay=float(_typed(table.get("accept_delay", 0.0), (int, float), "accept_delay")),
        seed=None if seed is None else _typed(seed, int, "faults.seed"),
        internal_failure_rate=float(
            _typed(table.get("internal_failure_rate", 0.0), (int, float), "rate")
        ),
    )


def _endpoint(raw: Any, index: int) -> EndpointSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"endpoints[{index}] must be a table")
    unknown = sorted(set(raw) - _ENDPOINT_KEYS)
    if unknown:
        raise ConfigError(f"unknown key(s) in endpoints[{index}]: {', '.join(unknown)}")
    if "name" not in raw:
        raise ConfigError(f"endpoints[{index}] needs a name")
    model = raw.get("container_url") or raw.get("model")
    if not isinstance(model, str) or ("model" in raw and "container_url" in raw):
        raise ConfigError(f"endpoints[{index}] needs exactly one of model or container_url")
    include = raw.get("include_inference_response_in", [])
    if isinstance(include, str):
        include = [part for part in include.split(",") if part.strip()]
    failure = raw.get("failure_path")
    if failure is True:
        failure = None
    elif failure is not None and failure is not False:
        failure = _typed(failure, str, f"endpoints[{index}].failure_path")
    return EndpointSpec(
        name=_typed(raw["name"], str, f"endpoints[{index}].name"),
        model=model,
        output_path=raw.get("output_path"),
        failure_path=failure,
        success_topic=raw.get("success_topic"),
        error_topic=raw.get("error_topic"),
        include_inference_response_in=tuple(_typed(include, list, "include")),
        max_concurrent_invocations_per_instance=_typed(
            raw.get("max_concurrent_invocations_per_instance", 4), int, "max_concurrent"
        ),
        instance_count=_typed(raw.get("instance_count", 1), int, "instance_count"),
    )


def parse_config(data: Any) -> EmulatorConfig:
    """Validate a decoded config document."""
    if not isinstance(data, dict):
        raise ConfigError("the config file must contain a table/object at the top level")
    unknown = sorted(set(data) - {"emulator", "faults", "endpoints"})
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(unknown)}")
    emulator = _table(data, "emulator", _EMULATOR_KEYS)
    config = EmulatorConfig(
        host=emulator.get("host"),
        port=emulator.get("port"),
        aws_port=emulator.get("aws_port"),
        time_scale=emulator.get("time_scale"),
        s3_endpoint_url=emulator.get("s3_endpoint_url"),
        sns_endpoint_url=emulator.get("sns_endpoint_url"),
        notification_delivery=emulator.get("notification_delivery"),
        state_dir=emulator.get("state_dir"),
    )
    if config.port is not None:
        _typed(config.port, int, "emulator.port")
    if config.aws_port is not None:
        _typed(config.aws_port, int, "emulator.aws_port")
    for key in (
        "s3_endpoint_url",
        "sns_endpoint_url",
        "host",
        "notification_delivery",
        "state_dir",
    ):
        if emulator.get(key) is not None:
            _typed(emulator[key], str, f"emulator.{key}")
    if config.time_scale is not None:
        _typed(config.time_scale, (int, float), "emulator.time_scale")
    for key in ("allow_remote_models", "allow_non_loopback"):
        if emulator.get(key) is not None:
            setattr(config, key, _typed(emulator[key], bool, f"emulator.{key}"))
    if "faults" in data:
        config.faults = faults_from_mapping(_table(data, "faults", _FAULT_KEYS))
    endpoints = data.get("endpoints", [])
    if not isinstance(endpoints, list):
        raise ConfigError("endpoints must be an array of tables")
    config.endpoints = [_endpoint(raw, index) for index, raw in enumerate(endpoints)]
    return config


def load_config(path: str | Path) -> EmulatorConfig:
    """Read and validate a ``.toml`` or ``.json`` config file.

    Raises:
        ConfigError: The file is missing, unparsable or invalid.
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(file)!r}: {exc.strerror}") from None
    is_json = file.suffix.lower() == ".json"
    if not is_json and _loads_toml is None:
        raise ConfigError("TOML config files need Python 3.11+; use a .json file")
    try:
        data = json.loads(raw) if is_json else _loads_toml(raw.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot parse config file {str(file)!r}: {exc}") from None
    return parse_config(data)
