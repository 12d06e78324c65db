"""The trust model: CreateModel names only the models given at start, the emulator binds only
loopback, unless the user allows more (``--allow-remote-models``, ``--allow-non-loopback``)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aiosagemaker.local import ConfigError, EndpointSpec, LocalEndpoint
from aiosagemaker.local._configfile import parse_config
from aiosagemaker.local._trust import is_loopback

from .local_helpers import client, get_object, read_exports, submit, wait_for_object

SERVE = [sys.executable, "-m", "aiosagemaker.local", "serve"]
DEADLINE_SECONDS = 60.0
MARKER_MODULE = "trust_marker_model"


def upper(body: bytes, content_type: str | None, accept: str | None) -> bytes:
    """The model given at start."""
    return body.upper()


STARTED = f"{__name__}:upper"


@pytest.fixture(scope="module")
def emulator() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(EndpointSpec(name="trusted", model=STARTED)) as local:
        yield local


@pytest.fixture
def sm(emulator: LocalEndpoint) -> Any:
    return client("sagemaker", emulator.env)


def _create_model(sm: Any, name: str, reference: str, *, via: str = "env") -> None:
    container: dict[str, Any] = {"Image": "my-image"}
    if via == "env":
        container["Environment"] = {"AIOSAGEMAKER_LOCAL_MODEL": reference}
    else:
        container["Image"] = reference
    sm.create_model(ModelName=name, PrimaryContainer=container)


@pytest.mark.parametrize("via", ["env", "image"])
@pytest.mark.parametrize("reference", ["builtins:exec", "os:system", "http://127.0.0.1:9"])
def test_create_model_refuses_models_not_given_at_start(sm: Any, via: str, reference: str) -> None:
    with pytest.raises(ClientError) as caught:
        _create_model(sm, f"hostile-{via}-{abs(hash(reference))}", reference, via=via)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert repr(reference) in error["Message"]
    assert "--allow-remote-models" in error["Message"]
    assert "allow_remote_models" in error["Message"]
    assert sm.list_models(NameContains="hostile")["Models"] == []


def test_a_refused_model_module_is_never_imported(
    sm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported"
    (tmp_path / f"{MARKER_MODULE}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "def predict(body, content_type, accept):\n    return body\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ClientError, match="allow-remote-models"):
        _create_model(sm, "marker-model", f"{MARKER_MODULE}:predict")
    assert not marker.exists()
    assert MARKER_MODULE not in sys.modules


def test_models_given_at_start_and_built_ins_can_be_deployed(
    sm: Any, emulator: LocalEndpoint
) -> None:
    _create_model(sm, "again-started", STARTED)
    _create_model(sm, "again-echo", "aiosagemaker.local.models:echo", via="image")
    sm.create_model(ModelName="default-echo", PrimaryContainer={"Image": "my-image:latest"})
    sm.create_endpoint_config(
        EndpointConfigName="again-config",
        ProductionVariants=[{"VariantName": "v", "ModelName": "again-started"}],
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://trust-results/out"}},
    )
    sm.create_endpoint(EndpointName="again", EndpointConfigName="again-config")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="again", WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
    )
    env = emulator.env
    response = submit(client("sagemaker-runtime", env), env, "again", b"allowed")
    s3 = client("s3", env)
    wait_for_object(s3, response["OutputLocation"], DEADLINE_SECONDS)
    assert get_object(s3, response["OutputLocation"])[0] == b"ALLOWED"


def test_allow_remote_models_lets_create_model_name_anything() -> None:
    spec = EndpointSpec(name="open", model="aiosagemaker.local.models:echo")
    with LocalEndpoint(spec, allow_remote_models=True) as local:
        sm = client("sagemaker", local.env)
        _create_model(sm, "anything", "os:getcwd")
        assert sm.describe_model(ModelName="anything")["ModelName"] == "anything"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "8.8.8.8", "no-such-host.invalid"])
def test_non_loopback_hosts_need_allow_non_loopback(host: str) -> None:
    assert not is_loopback(host)
    spec = EndpointSpec(name="x", model="aiosagemaker.local.models:echo")
    with pytest.raises(ConfigError, match="allow_non_loopback=True"):
        LocalEndpoint(spec, host=host)
    assert LocalEndpoint(spec, host=host, allow_non_loopback=True).non_loopback


def test_cli_refuses_a_non_loopback_host_in_one_line() -> None:
    completed = subprocess.run(
        [*SERVE, "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    [line] = completed.stderr.strip().splitlines()
    assert line.startswith("aiosagemaker: error: host '0.0.0.0' is not a loopback address")
    assert "--allow-non-loopback" in line
    assert completed.stdout == ""


def test_cli_serves_a_non_loopback_host_with_a_warning() -> None:
    process = subprocess.Popen(
        [*SERVE, "--host", "0.0.0.0", "--allow-non-loopback"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        exports = read_exports(process, DEADLINE_SECONDS)
        assert exports["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"].startswith("http://0.0.0.0:")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "aiosagemaker.local WARNING serving on 0.0.0.0, not loopback" in stderr
    assert "signatures are not checked" in stderr


def test_config_file_keys() -> None:
    config = parse_config({"emulator": {"allow_remote_models": True, "allow_non_loopback": False}})
    assert config.allow_remote_models is True and config.allow_non_loopback is False
    with pytest.raises(ConfigError, match=r"emulator\.allow_remote_models has the wrong type"):
        parse_config({"emulator": {"allow_remote_models": "yes"}})
