"""``--state-dir``: a client waits across a restart on the same ports, and its result arrives.

The emulator runs as ``python -m aiosagemaker.local serve`` in a subprocess, stopped with
SIGTERM and started again, so nothing survives in memory: only the state directory.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from aiosagemaker.local import EndpointSpec, LocalEndpoint

from .local_helpers import client, get_object, read_exports, split

DEADLINE_SECONDS = 120.0
MODEL = """
import pathlib, time

HERE = pathlib.Path(__file__).parent


def predict(body, content_type, accept):
    (HERE / ("arrived-" + body.decode())).write_text("")
    while not (HERE / "open").exists():  # the first emulator never gets past this
        time.sleep(0.01)
    return b"done: " + body
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(tmp_path: Path, ports: tuple[int, int]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosagemaker.local",
            "serve",
            "--endpoint",
            "durable",
            "--model",
            "held_model:predict",
            "--max-concurrency",
            "1",
            "--port",
            str(ports[0]),
            "--aws-port",
            str(ports[1]),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate(timeout=30)
        raise
    return stderr


def _wait_for_file(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not path.exists():
        assert process.poll() is None, "the emulator exited"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


class Waiter(threading.Thread):
    """A client waiting for an S3 object; connection errors (a restart) are retried."""

    def __init__(self, env: dict[str, str], uri: str) -> None:
        super().__init__(daemon=True)
        self.s3 = client("s3", env, retries={"max_attempts": 1}, connect_timeout=2)
        self.uri = uri
        self.body: bytes | None = None
        self.connection_errors = 0

    def run(self) -> None:
        bucket, key = split(self.uri)
        deadline = time.monotonic() + DEADLINE_SECONDS * 2
        while time.monotonic() < deadline:
            try:
                self.body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                return
            except (EndpointConnectionError, ConnectionClosedError):
                self.connection_errors += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in ("NoSuchKey", "404"):
                    raise
            time.sleep(0.05)


def test_a_client_waits_across_a_restart(tmp_path: Path) -> None:
    (tmp_path / "held_model.py").write_text(MODEL)
    ports = (_free_port(), _free_port())
    first = _serve(tmp_path, ports)
    try:
        env = read_exports(first, DEADLINE_SECONDS)
        runtime = client("sagemaker-runtime", env)
        s3, sqs = client("s3", env), client("sqs", env)
        s3.create_bucket(Bucket="kept-inputs")
        s3.put_object(Bucket="kept-inputs", Key="in/a", Body=b"a")
        s3.put_object(Bucket="kept-inputs", Key="in/b", Body=b"b")
        queue_url = sqs.create_queue(QueueName="kept-queue")["QueueUrl"]
        sqs.send_message(QueueUrl=queue_url, MessageBody="still here")
        running = runtime.invoke_endpoint_async(
            EndpointName="durable", InputLocation="s3://kept-inputs/in/a"
        )
        queued = runtime.invoke_endpoint_async(
            EndpointName="durable", InputLocation="s3://kept-inputs/in/b"
        )
        _wait_for_file(tmp_path / "arrived-a", first)  # one running, one queued
        waiters = [Waiter(env, r["OutputLocation"]) for r in (running, queued)]
        for waiter in waiters:
            waiter.start()
        stderr = _stop(first)
        assert first.returncode == 0, stderr
        assert "saved state (2 pending invocations)" in stderr
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate(timeout=30)

    (tmp_path / "open").write_text("")
    second = _serve(tmp_path, ports)
    try:
        assert read_exports(second, DEADLINE_SECONDS) == env  # same addresses
        for waiter in waiters:
            waiter.join(DEADLINE_SECONDS * 2)
        assert [w.body for w in waiters] == [b"done: a", b"done: b"]
        assert get_object(s3, "s3://kept-inputs/in/a")[0] == b"a"
        [message] = sqs.receive_message(QueueUrl=queue_url).get("Messages", [])
        assert message["Body"] == "still here"
    finally:
        stderr = _stop(second)
    assert "resumed 2 pending invocations" in stderr
    assert "Traceback" not in stderr


def test_state_dir_must_be_a_directory(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        LocalEndpoint(
            EndpointSpec(name="x", model="aiosagemaker.local.models:echo"), state_dir=file
        )


def test_in_process_restart_keeps_objects(tmp_path: Path) -> None:
    spec = EndpointSpec(name="kept", model="aiosagemaker.local.models:echo")
    with LocalEndpoint(spec, state_dir=tmp_path) as local:
        s3: Any = client("s3", local.env)
        s3.put_object(Bucket="aiosagemaker-local", Key="kept/object", Body=b"kept")
    assert (tmp_path / "moto.pickle").exists() and (tmp_path / "pending.json").exists()
    with LocalEndpoint(spec, state_dir=tmp_path) as local:
        s3 = client("s3", local.env)
        assert get_object(s3, "s3://aiosagemaker-local/kept/object")[0] == b"kept"


def _apply_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    for key, value in env.items():
        monkeypatch.setenv(key, value)


RESULTS = [b"result-%d" % i for i in range(8)]
TOKEN_KEY = "restart-test-key"


async def _finish_results() -> list[str]:
    """Submit RESULTS with an AsyncPredictor, wait for all of them; their signed tokens."""
    from aiosagemaker import AsyncPredictor, WaiterConfig

    wait = WaiterConfig(max_attempts=None, delay=0.05, timeout=DEADLINE_SECONDS)
    async with AsyncPredictor("kept-results", waiter_config=wait) as predictor:
        responses = [await predictor.predict_async(body) for body in RESULTS]
        assert [await r for r in responses] == RESULTS
    assert all(r.output_path.startswith("s3://aiosagemaker-local/") for r in responses)
    return [r.continuation_token(TOKEN_KEY) for r in responses]


async def _read_rebuilt(tokens: list[str]) -> list[bytes]:
    """Rebuild the responses in a new predictor and read them (a few checks, no waiting)."""
    from aiosagemaker import AsyncPredictor, WaiterConfig

    async with AsyncPredictor(
        "kept-results", waiter_config=WaiterConfig(max_attempts=3, delay=0.05)
    ) as predictor:
        return [await predictor.response_from_token(t, TOKEN_KEY) for t in tokens]


def test_finished_results_survive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Results in the emulator's own bucket, written before SIGTERM, are read after a restart."""
    ports = (_free_port(), _free_port())
    command = [sys.executable, "-m", "aiosagemaker.local", *_serve_echo_args(tmp_path, ports)]
    first = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        env = read_exports(first, DEADLINE_SECONDS)
        _apply_env(monkeypatch, env)
        tokens = anyio.run(_finish_results)
        stderr = _stop(first)
        assert first.returncode == 0, stderr
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate(timeout=30)

    second = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert read_exports(second, DEADLINE_SECONDS) == env
        assert anyio.run(_read_rebuilt, tokens) == RESULTS
    finally:
        stderr = _stop(second)
    assert "Traceback" not in stderr


def _serve_echo_args(tmp_path: Path, ports: tuple[int, int]) -> list[str]:
    return [
        *("serve", "--endpoint", "kept-results", "--model", "aiosagemaker.local.models:echo"),
        *("--port", str(ports[0]), "--aws-port", str(ports[1])),
        *("--state-dir", str(tmp_path / "state")),
    ]
