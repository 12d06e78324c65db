"""Subprocesses a user would start: the ``aiosagemaker`` command against the emulator, and the
example scripts (helpers, not fixtures).

Every CLI test builds its command line and environment here, so a change to how the command
is started (its module, the variables it needs, the flags every run passes) is made once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiosagemaker.local import LocalEndpoint
from conftest import BUCKET

COMMAND = [sys.executable, "-m", "aiosagemaker"]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
UNCERTAIN = "SubmissionUncertainError"


def cli_env(local: LocalEndpoint) -> dict[str, str]:
    """This process's environment with the emulator's variables and no AWS files or profile."""
    env = {**os.environ, **local.env}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env.pop("AWS_PROFILE", None)
    env.pop("AIOSAGEMAKER_TOKEN_KEY", None)
    return env


def run_cli(
    local: LocalEndpoint,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    cwd: Path | None = None,
    wrapper: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """``aiosagemaker ARGS...`` to its end (``wrapper`` runs it, e.g. inside ``unshare``)."""
    return subprocess.run(
        [*wrapper, *COMMAND, *args],
        env=cli_env(local) if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )


def batch_args(
    inputs: Path, output: Path, *extra: str, endpoint: str = "scripted", progress: bool = False
) -> list[str]:
    """``batch ENDPOINT INPUTS --output OUTPUT --bucket BUCKET [--no-progress] EXTRA...``."""
    args = ["batch", endpoint, str(inputs), "--output", str(output), "--bucket", BUCKET]
    return [*args, *([] if progress else ["--no-progress"]), *extra]


def run_batch(
    local: LocalEndpoint,
    inputs: Path,
    output: Path,
    *extra: str,
    endpoint: str = "scripted",
    env: dict[str, str] | None = None,
    progress: bool = False,
    wrapper: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """``aiosagemaker batch`` over ``inputs`` to its end; see :func:`batch_args`."""
    args = batch_args(inputs, output, *extra, endpoint=endpoint, progress=progress)
    return run_cli(local, *args, env=env, wrapper=wrapper)


def start_batch(
    local: LocalEndpoint,
    inputs: Path,
    output: Path,
    *extra: str,
    stderr: int = subprocess.PIPE,
) -> subprocess.Popen[str]:
    """``aiosagemaker batch`` started, not waited for (stdout discarded)."""
    return subprocess.Popen(
        [*COMMAND, *batch_args(inputs, output, *extra)],
        env=cli_env(local),
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )


def write_inputs(path: Path, count: int) -> None:
    """``count`` scripted-model inputs returning their index after 0.2 s."""
    path.write_text("".join(json.dumps({"output": i, "sleep": 0.2}) + "\n" for i in range(count)))


def read_outcomes(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for(condition: Callable[[], bool], deadline: float) -> None:
    """Poll a condition another process makes true; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)  # a subprocess writes the file: nothing to wait on but the file


def user_env() -> dict[str, str]:
    """This process's environment without ``AWS_*`` variables (an example starts its own
    emulator) and without a token key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop("AIOSAGEMAKER_TOKEN_KEY", None)
    return env


def run_example(name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python examples/NAME ARGS...`` to its end, in :func:`user_env`."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
