"""Start-up of ``aiosagemaker local serve``: errors fail fast, SIGTERM works, model import."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .local_helpers import client, get_object, read_exports, submit, wait_for_object

SERVE = [sys.executable, "-m", "aiosagemaker.local", "serve"]
FAIL_FAST_SECONDS = 30.0
"""Generous for a noisy machine; a hang would be caught (the old behaviour never exited)."""


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=FAIL_FAST_SECONDS, check=False, cwd=cwd
    )


def _assert_one_line_exit_2(completed: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("aiosagemaker: error: ")
    assert fragment in lines[0]
    assert completed.stdout == ""


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held by a listening socket for the test's duration."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("host", "fragment"),
    [("8.8.8.8", "Cannot assign requested address"), ("256.1.1.1", "cannot bind")],
)
def test_bad_host_exits_2_at_once(host: str, fragment: str) -> None:
    completed = _run([*SERVE, "--host", host, "--allow-non-loopback"])
    warning, *error = completed.stderr.splitlines(keepends=True)
    assert f"WARNING serving on {host}, not loopback" in warning
    completed.stderr = "".join(error)
    _assert_one_line_exit_2(completed, fragment)


@pytest.mark.parametrize("flag", ["--port", "--aws-port"])
def test_port_in_use_exits_2(flag: str, taken_port: int) -> None:
    completed = _run([*SERVE, flag, str(taken_port)])
    _assert_one_line_exit_2(completed, f"127.0.0.1:{taken_port}")
    assert "Address already in use" in completed.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--s3-endpoint-url", "notaurl"],
        ["--s3-endpoint-url", "ftp://127.0.0.1:9000"],
        ["--sns-endpoint-url", "http://:80"],
        ["--sns-endpoint-url", "http://127.0.0.1:99999"],
    ],
)
def test_bad_url_exits_2(args: list[str]) -> None:
    _assert_one_line_exit_2(_run([*SERVE, *args]), "not an http(s)://host[:port] URL")


def test_sigterm_during_start_up_stops(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "slow_model.py").write_text(
        "import pathlib, time\n"
        f"pathlib.Path({str(marker)!r}).write_text('yes')\n"
        "time.sleep(600)  # an import that never finishes on its own\n"
        "def predict(body, content_type, accept):\n"
        "    return body\n"
    )
    process = subprocess.Popen(
        [*SERVE, "--model", "slow_model:predict"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + FAIL_FAST_SECONDS
        while not marker.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the model module was never imported"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=FAIL_FAST_SECONDS)
        assert process.returncode == 0
        assert "stopped during start-up" in stderr
        assert "Traceback" not in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "aiosagemaker"
    if not script.exists():
        pytest.skip("the aiosagemaker console script is not installed next to this Python")
    return [str(script), "local", "serve"]


@pytest.mark.parametrize("entry", ["console-script", "python-m"])
def test_model_module_in_the_current_directory(entry: str, tmp_path: Path) -> None:
    (tmp_path / "cwd_model.py").write_text(
        "def predict(body, content_type, accept):\n    return b'from cwd: ' + body\n"
    )
    command = _console_script() if entry == "console-script" else SERVE
    process = subprocess.Popen(
        [*command, "--endpoint", "cwd", "--model", "cwd_model:predict"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        exports = read_exports(process, FAIL_FAST_SECONDS * 2)
        runtime = client("sagemaker-runtime", exports)
        response = submit(runtime, exports, "cwd", b"hello")
        s3 = client("s3", exports)
        wait_for_object(s3, response["OutputLocation"], 60)
        assert get_object(s3, response["OutputLocation"])[0] == b"from cwd: hello"
        process.send_signal(signal.SIGTERM)
        assert process.wait(FAIL_FAST_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
