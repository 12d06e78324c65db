"""The ``aiosagemaker local serve`` command, run in a subprocess."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from .local_helpers import client, get_object, submit

SERVE = [sys.executable, "-m", "aiosagemaker.local", "serve"]
ENV_KEYS = 10


def _lines(stream: IO[str]) -> queue.Queue[str | None]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def server_process() -> Iterator[subprocess.Popen[str]]:
    """``serve`` with a second endpoint from flags; killed by handle if a test fails."""
    process = subprocess.Popen(
        [
            *SERVE,
            "--endpoint",
            "cli-echo",
            "--model",
            "aiosagemaker.local.models:echo",
            "--max-concurrency",
            "2",
            "--latency",
            "0",
            "--seed",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_serve_prints_exports_accepts_and_stops_on_sigint(
    server_process: subprocess.Popen[str],
) -> None:
    assert server_process.stdout is not None and server_process.stderr is not None
    lines = _lines(server_process.stdout)
    env: dict[str, str] = {}
    while len(env) < ENV_KEYS:
        line = lines.get(timeout=60)
        assert line is not None, "serve exited before printing its exports"
        assert line.startswith("export "), line
        key, _, value = line.removeprefix("export ").strip().partition("=")
        env[key] = value
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"].startswith("http://127.0.0.1:")
    assert env["AWS_ENDPOINT_URL_SAGEMAKER"] == env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"]
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    runtime = client("sagemaker-runtime", env)
    response = submit(runtime, env, "cli-echo", b"via cli")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    s3 = client("s3", env)
    waiter = s3.get_waiter("object_exists")
    bucket, _, key = response["OutputLocation"][5:].partition("/")
    waiter.wait(Bucket=bucket, Key=key, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    assert get_object(s3, response["OutputLocation"])[0] == b"via cli"
    server_process.send_signal(signal.SIGINT)
    assert server_process.wait(60) == 0
    stderr = server_process.stderr.read()
    assert "Traceback" not in stderr
    assert "endpoint=cli-echo" in stderr  # invocations are logged
    assert "stopped" in stderr


def test_sigterm_stops_cleanly(server_process: subprocess.Popen[str]) -> None:
    assert server_process.stdout is not None and server_process.stderr is not None
    lines = _lines(server_process.stdout)
    assert (lines.get(timeout=60) or "").startswith("export ")
    server_process.send_signal(signal.SIGTERM)
    assert server_process.wait(60) == 0
    assert "Traceback" not in server_process.stderr.read()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--model", "no_such_module_xyz:fn"], "cannot import model module"),
        (["--model", "aiosagemaker.local.models:missing"], "has no attribute"),
        (["--max-concurrency", "zero"], "--max-concurrency"),
        (["--max-concurrency", "1001"], "between 1 and 1000"),
        (["--port", "70000"], "--port"),
        (["--unavailable-rate", "2"], "unavailable_rate"),
        (["--latency", "weird:1"], "bad latency"),
        (["--internal-failure-rate", "2"], "internal_failure_rate"),
        (["--time-scale", "-1"], "time_scale"),
        (["--endpoint", "under_score"], "invalid endpoint name"),
        (["--config", "/nonexistent/emulator.toml"], "cannot read config file"),
        (["--success-topic", "bad topic!"], "SNS topic name"),
        (["--include-response-in", "sometimes"], "include_inference_response_in"),
        (["--container-url", "ftp://x"], "bad container URL"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    completed = _run([*SERVE, *args])
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("aiosagemaker: error: ")
    assert fragment in lines[0]
    assert completed.stdout == ""


def test_bad_config_file_is_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[endpoints]]\nname = "x"\nmodel = 3\n')
    completed = _run([*SERVE, "--config", str(config)])
    assert completed.returncode == 2
    assert completed.stderr.startswith("aiosagemaker: error: ")
    assert len(completed.stderr.strip().splitlines()) == 1


def test_console_script_reports_bad_input() -> None:
    script = Path(sys.executable).parent / "aiosagemaker"
    if not script.exists():
        pytest.skip("the aiosagemaker console script is not installed next to this Python")
    completed = _run([str(script), "local", "serve", "--port", "x"])
    assert completed.returncode == 2
    assert completed.stderr.startswith("aiosagemaker: error: argument --port")
