"""Fixed ports (``port``/``aws_port``, flags and config keys) and ``GET /ping``."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from aiosagemaker.local import ConfigError, EndpointSpec, LocalEndpoint
from aiosagemaker.local._cli import _build, build_parser
from aiosagemaker.local._configfile import parse_config

from .local_helpers import client, get_object, submit, wait_for_object

ECHO = EndpointSpec(name="fixed", model="aiosagemaker.local.models:echo")


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_ping_answers_200(emu: LocalEndpoint) -> None:
    with urllib.request.urlopen(f"{emu.runtime_url}/ping", timeout=30) as response:
        assert response.status == 200
        assert response.read() == b""


def test_same_ports_after_a_restart() -> None:
    with LocalEndpoint(ECHO) as first:
        runtime_port, aws_port = _port(first.runtime_url), _port(first.s3_url)
        first_env = first.env
    with LocalEndpoint(ECHO, port=runtime_port, aws_port=aws_port) as second:
        assert second.env == first_env  # the exports stay valid across restarts
        assert _port(second.sns_url or "") == aws_port
        runtime = client("sagemaker-runtime", second.env)
        response = submit(runtime, second.env, "fixed", b"same address")
        s3 = client("s3", second.env)
        wait_for_object(s3, response["OutputLocation"], 60)
        assert get_object(s3, response["OutputLocation"])[0] == b"same address"


def test_aws_port_from_flag_and_config(tmp_path: Path) -> None:
    config = tmp_path / "emulator.json"
    config.write_text('{"emulator": {"port": 8085, "aws_port": 4566}}')
    args = build_parser().parse_args(["local", "serve", "--config", str(config)])
    local = _build(args)
    assert isinstance(local, LocalEndpoint)
    assert (local._port, local._aws_port) == (8085, 4566)
    args = build_parser().parse_args(
        ["local", "serve", "--config", str(config), "--aws-port", "4570", "--port", "0"]
    )
    local = _build(args)
    assert isinstance(local, LocalEndpoint)
    assert (local._port, local._aws_port) == (0, 4570)


@pytest.mark.parametrize("value", ["4566", True, 1.5])
def test_bad_aws_port_in_config(value: object) -> None:
    with pytest.raises(ConfigError, match="aws_port"):
        parse_config({"emulator": {"aws_port": value}})


@pytest.mark.parametrize("value", [-1, 70000])
def test_bad_aws_port_argument(value: int) -> None:
    with pytest.raises(ConfigError, match="aws_port"):
        LocalEndpoint(ECHO, aws_port=value)
