"""Endpoint specs, config files (TOML/JSON) and the CLI's use of them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from aiosagemaker.local import ConfigError, EndpointSpec, FaultConfig, Latency, LocalEndpoint
from aiosagemaker.local._configfile import load_config, parse_config
from aiosagemaker.local._spec import resolve_endpoint, split_s3_uri

TOML = """
[emulator]
port = 0
time_scale = 0.5

[faults]
model_latency = "uniform:0.01,0.02"
unavailable_rate = 0.1
seed = 7

[[endpoints]]
name = "first"
model = "aiosagemaker.local.models:echo"
failure_path = false
success_topic = "first-ok"
include_inference_response_in = ["SUCCESS_NOTIFICATION_TOPIC", "error"]
max_concurrent_invocations_per_instance = 3
instance_count = 2

[[endpoints]]
name = "second"
container_url = "http://127.0.0.1:8080"
output_path = "s3://my-bucket/out/"
"""


def test_resolve_defaults() -> None:
    resolved = resolve_endpoint(EndpointSpec(name="ep-1", model="aiosagemaker.local.models:echo"))
    assert resolved.output_path == "s3://aiosagemaker-local/async-endpoint-outputs/ep-1"
    assert resolved.failure_path == "s3://aiosagemaker-local/async-endpoint-failures/ep-1"
    assert resolved.max_concurrent_invocations_per_instance == 4
    assert resolved.max_concurrency == 4
    assert resolved.success_topic_arn is None
    assert resolved.async_inference_config() == {
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
        "OutputConfig": {
            "S3OutputPath": "s3://aiosagemaker-local/async-endpoint-outputs/ep-1",
            "S3FailurePath": "s3://aiosagemaker-local/async-endpoint-failures/ep-1",
        },
    }


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "a" * 64}, "invalid endpoint name"),
        ({"name": "has space"}, "invalid endpoint name"),
        ({"max_concurrent_invocations_per_instance": 0}, "between 1 and 1000"),
        ({"max_concurrent_invocations_per_instance": 1001}, "between 1 and 1000"),
        ({"instance_count": -1}, "instance_count"),
        ({"output_path": "bucket/prefix"}, "not an S3 URI"),
        ({"failure_path": "https://bucket.s3.amazonaws.com/x"}, "must be an s3:// URI"),
        ({"success_topic": "arn:aws:sns:us-east-1:12:short"}, "topic ARN"),
        ({"include_inference_response_in": ("ALWAYS",)}, "include_inference_response_in"),
    ],
)
def test_spec_validation(kwargs: dict[str, Any], fragment: str) -> None:
    spec: dict[str, Any] = {"name": "ok", "model": "aiosagemaker.local.models:echo", **kwargs}
    with pytest.raises(ConfigError, match=fragment):
        resolve_endpoint(EndpointSpec(**spec))


def test_split_s3_uri() -> None:
    assert split_s3_uri("s3://b/k/x") == ("b", "k/x")
    assert split_s3_uri("https://b.s3.us-east-1.amazonaws.com/k") == ("b", "k")
    assert split_s3_uri("https://127.0.0.1:9000/b/k") == ("b", "k")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib needs Python 3.11")
def test_toml_config(tmp_path: Path) -> None:
    path = tmp_path / "emulator.toml"
    path.write_text(TOML)
    config = load_config(path)
    assert config.port == 0 and config.time_scale == 0.5
    assert config.faults == FaultConfig(
        model_latency=Latency.uniform(0.01, 0.02), unavailable_rate=0.1, seed=7
    )
    first, second = config.endpoints
    assert first == EndpointSpec(
        name="first",
        model="aiosagemaker.local.models:echo",
        failure_path=False,
        success_topic="first-ok",
        include_inference_response_in=("SUCCESS_NOTIFICATION_TOPIC", "error"),
        max_concurrent_invocations_per_instance=3,
        instance_count=2,
    )
    assert second.model == "http://127.0.0.1:8080"
    resolved = resolve_endpoint(second)
    assert resolved.output_path == "s3://my-bucket/out"
    assert resolve_endpoint(first).include_inference_response_in == (
        "SUCCESS_NOTIFICATION_TOPIC",
        "ERROR_NOTIFICATION_TOPIC",
    )


def test_json_config(tmp_path: Path) -> None:
    path = tmp_path / "emulator.json"
    path.write_text(
        json.dumps(
            {
                "faults": {
                    "model_latency": 0.5,
                    "accept_delay": 0.1,
                    "internal_failure_rate": 0.25,
                },
                "endpoints": [{"name": "j", "model": "aiosagemaker.local.models:demo"}],
            }
        )
    )
    config = load_config(path)
    assert config.faults == FaultConfig(
        model_latency=0.5, accept_delay=0.1, internal_failure_rate=0.25
    )
    assert [e.name for e in config.endpoints] == ["j"]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "top level"),
        ({"extra": {}}, "unknown section"),
        ({"emulator": {"prot": 1}}, "unknown key"),
        ({"emulator": {"port": "80"}}, "wrong type"),
        ({"faults": {"unavailable_rate": "high"}}, "wrong type"),
        ({"endpoints": {"name": "x"}}, "array of tables"),
        ({"endpoints": [{"model": "m:f"}]}, "needs a name"),
        ({"endpoints": [{"name": "x"}]}, "exactly one of model or container_url"),
        ({"endpoints": [{"name": "x", "model": "m:f", "container_url": "http://h"}]}, "exactly"),
        ({"endpoints": [{"name": "x", "model": "m:f", "colour": 1}]}, "unknown key"),
    ],
)
def test_config_errors(data: Any, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_config(data)


def test_unparsable_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{nope")
    with pytest.raises(ConfigError, match="cannot parse config file"):
        load_config(path)


@pytest.mark.parametrize(
    "kwargs", [{"time_scale": 0}, {"time_scale": float("nan")}, {"port": 70000}]
)
def test_local_endpoint_argument_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        LocalEndpoint(EndpointSpec(name="x", model="aiosagemaker.local.models:echo"), **kwargs)


def test_duplicate_endpoint_names() -> None:
    spec = EndpointSpec(name="x", model="aiosagemaker.local.models:echo")
    with pytest.raises(ConfigError, match="twice"):
        LocalEndpoint([spec, spec])
