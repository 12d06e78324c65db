"""``aiosagemaker batch`` against a hostile or careless user: subprocesses, the emulator, moto.

Locking, the output and input never destroyed, typed one-line errors (exit 2), retries of
failed and uncertain inputs, line numbers with blank lines, exit codes and the help text.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiosagemaker._cli._parser import build_parser
from aiosagemaker.local import LocalEndpoint
from cli_helpers import (
    UNCERTAIN,
    batch_args,
    cli_env,
    read_outcomes,
    run_batch,
    run_cli,
    start_batch,
    wait_for,
    write_inputs,
)
from conftest import BUCKET, GATES
from s3_fault_proxy import Fault, S3FaultProxy

INVOKE_PATH = "/async-invocations"


def one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2 with exactly one ``aiosagemaker: error:`` line holding every fragment."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aiosagemaker: error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def runtime_env(local: LocalEndpoint, runtime_proxy: S3FaultProxy) -> Iterator[dict[str, str]]:
    """The subprocess environment with InvokeEndpointAsync through the fault proxy."""
    runtime_proxy.reset()
    env = cli_env(local)
    env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = runtime_proxy.url
    yield env
    runtime_proxy.reset()


# -- 1. one process per state file -----------------------------------------------------------


def test_second_process_on_the_same_state_exits_2_naming_the_holder(
    local: LocalEndpoint, tmp_path: Path, gate: Any
) -> None:
    name = gate()
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inputs.write_text("".join(json.dumps({"gate": name, "output": i}) + "\n" for i in range(20)))
    lock = tmp_path / "out.jsonl.state.db.lock"
    before = local.stats("scripted").accepted
    first = start_batch(local, inputs, output)
    try:
        wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid), 60)
        wait_for(lambda: local.stats("scripted").accepted - before >= 1, 60)
        second = run_batch(local, inputs, output)
        one_line_error(second, f"pid {first.pid}", "another aiosagemaker batch")
    finally:
        GATES[name].open()
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert [o["result"] for o in read_outcomes(output)] == list(range(20))
    assert local.stats("scripted").accepted - before == 20  # never twice


# -- 2. and 7. the output and the input are never destroyed ----------------------------------


def test_state_of_another_batch_leaves_the_output_untouched(
    local: LocalEndpoint, tmp_path: Path
) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_inputs(inputs, 5)
    assert run_batch(local, inputs, output).returncode == 0
    state = tmp_path / "out.jsonl.state.db"
    precious = tmp_path / "precious.jsonl"
    precious.write_text("keep me\n")
    other = tmp_path / "other.jsonl"
    write_inputs(other, 3)
    done = run_batch(local, other, precious, "--state", str(state))
    one_line_error(done, "belongs to another batch", "--force-new")
    assert precious.read_text() == "keep me\n"
    # the endpoint fixed after a failed run: same --output, another endpoint
    renamed = run_batch(local, inputs, output, endpoint="no-failure-path")
    one_line_error(renamed, "belongs to another batch", "'scripted'", "--force-new")
    assert [o["result"] for o in read_outcomes(output)] == list(range(5))
    again = run_batch(local, inputs, output, "--force-new", endpoint="no-failure-path")
    assert again.returncode == 0, again.stderr
    assert [o["result"] for o in read_outcomes(output)] == list(range(5))


def test_output_equal_to_the_input_is_refused(local: LocalEndpoint, tmp_path: Path) -> None:
    inputs = tmp_path / "in.jsonl"
    write_inputs(inputs, 3)
    text = inputs.read_text()
    os.symlink(inputs, tmp_path / "link.jsonl")
    for output in (inputs, tmp_path / "link.jsonl", tmp_path / "sub" / ".." / "in.jsonl"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        one_line_error(run_batch(local, inputs, output), "is the input file")
        assert inputs.read_text() == text


def test_a_changed_input_is_refused_until_force_new(local: LocalEndpoint, tmp_path: Path) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_inputs(inputs, 6)
    assert run_batch(local, inputs, output).returncode == 0
    before = local.stats("scripted").accepted
    written = output.read_text()
    inputs.write_text(json.dumps({"output": "new"}) + "\n" + inputs.read_text())
    one_line_error(run_batch(local, inputs, output), "changed since", "--force-new")
    assert output.read_text() == written
    assert local.stats("scripted").accepted == before
    fresh = run_batch(local, inputs, output, "--force-new")
    assert fresh.returncode == 0, fresh.stderr
    assert [o["result"] for o in read_outcomes(output)] == ["new", *range(6)]
    assert [o["index"] for o in read_outcomes(output)] == list(range(7))


# -- 3. and 8. uncertain and failed inputs can be sent again ----------------------------------


def test_resubmit_uncertain_after_the_batch_finished(
    local: LocalEndpoint, tmp_path: Path, runtime_proxy: S3FaultProxy, runtime_env: dict[str, str]
) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_inputs(inputs, 8)
    runtime_proxy.add(Fault("POST", INVOKE_PATH, after_forward="drop", times=3))
    first = run_batch(local, inputs, output, "--concurrency", "1", env=runtime_env)
    assert first.returncode == 0, first.stderr
    uncertain = [o for o in read_outcomes(output) if o.get("error", {}).get("type") == UNCERTAIN]
    assert len(uncertain) == 3
    before = local.stats("scripted").accepted
    retried = run_batch(local, inputs, output, "--retry-failed", env=runtime_env)
    assert retried.returncode == 0, retried.stderr
    assert local.stats("scripted").accepted == before  # definite errors only: none here
    again = run_batch(local, inputs, output, "--resubmit-uncertain", env=runtime_env)
    assert again.returncode == 0, again.stderr
    outcomes = read_outcomes(output)
    assert [o.get("result") for o in outcomes] == list(range(8)), outcomes
    assert local.stats("scripted").accepted - before == 3
    resent = {o["index"] for o in uncertain}
    with sqlite3.connect(tmp_path / "out.jsonl.state.db") as db:
        attempts = db.execute("SELECT idx, inference_id FROM attempts").fetchall()
    assert sorted(idx for idx, _ in attempts) == sorted([*range(8), *resent])
    assert len({inference_id for _, inference_id in attempts}) == len(attempts)


def test_nothing_succeeded_exits_1_and_retry_failed_resubmits(
    local: LocalEndpoint, tmp_path: Path
) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_inputs(inputs, 4)
    unreachable = cli_env(local)
    with socket_closed() as port:
        unreachable["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = f"http://127.0.0.1:{port}"
        failed = run_batch(local, inputs, output, env=unreachable)
    assert failed.returncode == 1, failed.stderr
    assert "no input succeeded" in failed.stderr and "--retry-failed" in failed.stderr
    assert all("error" in o for o in read_outcomes(output))
    assert UNCERTAIN not in output.read_text()  # never sent: a definite error
    before = local.stats("scripted").accepted
    rerun = run_batch(local, inputs, output)
    assert rerun.returncode == 1 and local.stats("scripted").accepted == before
    retried = run_batch(local, inputs, output, "--retry-failed")
    assert retried.returncode == 0, retried.stderr
    outcomes = read_outcomes(output)
    assert [o["result"] for o in outcomes] == list(range(4))
    assert local.stats("scripted").accepted - before == 4
    with sqlite3.connect(tmp_path / "out.jsonl.state.db") as db:
        attempts = db.execute("SELECT idx, inference_id FROM attempts").fetchall()
    assert sorted(idx for idx, _ in attempts) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert len({inference_id for _, inference_id in attempts}) == 8
    assert {o["inference_id"] for o in outcomes} <= {i for _, i in attempts}


def test_unknown_endpoint_exits_1(local: LocalEndpoint, tmp_path: Path) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_inputs(inputs, 3)
    done = run_batch(local, inputs, output, endpoint="no-such-endpoint")
    assert done.returncode == 1, done.stderr
    assert "EndpointNotFoundError" in done.stderr


class socket_closed:
    """A loopback port that nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        return None


# -- 4. user-caused failures are one line, exit 2, and leave nothing behind ------------------


def test_input_not_utf8_names_the_line(local: LocalEndpoint, tmp_path: Path) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inputs.write_bytes(b'{"output": 1}\n\n{"output": "\xff\xfe"}\n{"output": 2}\n')
    before = local.stats("scripted").accepted
    one_line_error(run_batch(local, inputs, output), "line 3", "not UTF-8")
    assert local.stats("scripted").accepted == before
    assert not output.exists()


def test_corrupt_state_file(local: LocalEndpoint, tmp_path: Path) -> None:
    inputs, output, state = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "s.db"
    write_inputs(inputs, 2)
    state.write_bytes(b"this is no database\n" * 300)
    one_line_error(
        run_batch(local, inputs, output, "--state", str(state)), str(state), "--force-new"
    )
    assert not output.exists()
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
    one_line_error(run_batch(local, inputs, output, "--state", str(foreign)), "not a batch state")
    fresh = run_batch(local, inputs, output, "--state", str(state), "--force-new")
    assert fresh.returncode == 0, fresh.stderr


@pytest.mark.parametrize("command", ["batch", "invoke"])
def test_no_region_or_credentials(local: LocalEndpoint, tmp_path: Path, command: str) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_inputs(inputs, 2)
    args = (
        batch_args(inputs, output) if command == "batch" else ["invoke", "scripted", "--data", "{}"]
    )
    no_region = cli_env(local)
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        no_region.pop(name, None)
    done = run_cli(local, *args, env=no_region)
    one_line_error(done, "no AWS region", "AWS_DEFAULT_REGION", "--region")
    with_flag = run_cli(local, *args, "--region", "us-east-1", "--bucket", BUCKET, env=no_region)
    assert with_flag.returncode == 0, with_flag.stderr
    no_keys = cli_env(local)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        no_keys.pop(name, None)
    no_keys["AWS_EC2_METADATA_DISABLED"] = "true"
    done = run_cli(local, *args, env=no_keys)
    one_line_error(done, "no AWS credentials", "AWS_ACCESS_KEY_ID")


def _tiny_tmpfs_works(directory: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=16k tmpfs "$0"', str(directory)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


def test_disk_full_is_one_line_and_leaves_no_partial_file(
    local: LocalEndpoint, tmp_path: Path
) -> None:
    full = tmp_path / "full"
    full.mkdir()
    if not _tiny_tmpfs_works(full):
        pytest.skip("needs 'unshare -rm' to mount a 16 KiB tmpfs (user namespaces)")
    inputs, state = tmp_path / "in.jsonl", tmp_path / "state.db"
    write_inputs(inputs, 200)  # outcomes of about 30 KiB
    script = (
        'mount -t tmpfs -o size=16k tmpfs "$0" || exit 99; "$@"; code=$?; ls -A "$0"; exit $code'
    )
    wrapper = ["unshare", "-rm", "sh", "-c", script, str(full)]
    done = run_batch(local, inputs, full / "out.jsonl", "--state", str(state), wrapper=wrapper)
    one_line_error(done, "no space left", "out.jsonl", "run the same command again")
    assert done.stdout == ""  # ls: nothing left on the full filesystem


# -- 5. result --timeout says why --------------------------------------------------------------


def test_result_timeout_says_why(local: LocalEndpoint, tmp_path: Path) -> None:
    slow = '{"output": 1, "sleep": 60}'
    submitted = run_cli(local, "invoke", "scripted", "--data", slow, "--bucket", BUCKET)
    assert submitted.returncode == 0, submitted.stderr
    token = json.loads(submitted.stdout)["token"]
    env = cli_env(local)
    with socket_closed() as port:
        env["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{port}"
        done = run_cli(local, "result", token, "--timeout", "3", env=env)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "PollingTimeoutError" in lines[0], done.stderr
    assert "could not be reached" in lines[0] or "Connect" in lines[0], lines[0]


# -- 6. line numbers ----------------------------------------------------------------------------


def test_blank_lines_keep_the_line_numbers(local: LocalEndpoint, tmp_path: Path) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inputs.write_text('{"output": "a"}\n\n   \nnot json\n{"output": "e"}\n')
    done = run_batch(local, inputs, output)
    assert done.returncode == 0, done.stderr
    outcomes = read_outcomes(output)
    assert [o["index"] for o in outcomes] == [0, 3, 4]
    assert outcomes[0]["result"] == "a" and outcomes[2]["result"] == "e"
    assert "input line 4 is not JSON" in outcomes[1]["error"]["message"]


# -- 9., 10. and 11. progress total, --no-inline, --help ---------------------------------------


def test_progress_bar_has_a_total_on_the_first_run(local: LocalEndpoint, tmp_path: Path) -> None:
    pytest.importorskip("tqdm")
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_inputs(inputs, 7)
    with inputs.open("a") as file:
        file.write("\n")
    done = run_batch(local, inputs, output, progress=True)
    assert done.returncode == 0, done.stderr
    renders = [part for part in done.stderr.replace("\r", "\n").split("\n") if part.strip()]
    assert "0/7" in renders[0], done.stderr  # the total is known from the first render
    assert "7/7" in done.stderr, done.stderr


def test_no_inline_uploads_to_the_bucket(
    local: LocalEndpoint, tmp_path: Path, runtime_proxy: S3FaultProxy, runtime_env: dict[str, str]
) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_inputs(inputs, 3)
    done = run_batch(local, inputs, output, "--no-inline", env=runtime_env)
    assert done.returncode == 0, done.stderr
    locations = [
        headers.get("X-Amzn-SageMaker-InputLocation", "")
        for (method, path), headers in zip(
            runtime_proxy.requests, runtime_proxy.headers, strict=True
        )
        if method == "POST" and INVOKE_PATH in path
    ]
    assert len(locations) == 3
    assert all(location.startswith(f"s3://{BUCKET}/") for location in locations), locations


def test_help_describes_every_option_with_its_default() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    for name in ("batch", "invoke", "result"):
        sub = commands.choices[name]  # type: ignore[index]
        assert "exit codes" in sub.format_help()
        for action in sub._actions:
            assert action.help, f"{name} {action.dest} has no help"
            if action.default not in (None, False, "==SUPPRESS=="):
                assert "%(default)s" in action.help, f"{name} {action.dest}: no default shown"
    text = " ".join(commands.choices["batch"].format_help().split())  # type: ignore[index]
    assert "(default: 64)" in text and "(default: application/json)" in text
    assert "--no-inline" in text and "128,000 bytes" in text


# -- stretch: --max-failure-ratio ---------------------------------------------------------------


def test_max_failure_ratio_stops_submitting(local: LocalEndpoint, tmp_path: Path) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [{"output": i} if i % 4 == 0 else {"fail": f"bad {i}"} for i in range(200)]
    inputs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    before = local.stats("scripted").accepted
    stopped = run_batch(local, inputs, output, "--max-failure-ratio", "0.5", "--concurrency", "4")
    assert stopped.returncode == 1, stopped.stderr
    assert "stopped:" in stopped.stderr and "--max-failure-ratio 0.5" in stopped.stderr
    first = read_outcomes(output)
    assert 20 <= len(first) < 200
    assert local.stats("scripted").accepted - before == len(first)  # in flight: finished
    rest = run_batch(local, inputs, output)  # the same command without the limit: the rest
    assert rest.returncode == 0, rest.stderr
    outcomes = read_outcomes(output)
    assert [o["index"] for o in outcomes] == list(range(200))
    assert [o.get("result") for o in outcomes[::4]] == list(range(0, 200, 4))
    assert local.stats("scripted").accepted - before == 200
    bad = run_batch(local, inputs, output, "--max-failure-ratio", "1.5")
    assert bad.returncode == 2 and "must be >= 0 and < 1" in bad.stderr


def test_output_on_a_read_only_filesystem_is_one_line(local: LocalEndpoint, tmp_path: Path) -> None:
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    if not _tiny_tmpfs_works(readonly):
        pytest.skip("needs 'unshare -rm' to mount a read-only tmpfs (user namespaces)")
    inputs, state = tmp_path / "in.jsonl", tmp_path / "state.db"
    write_inputs(inputs, 3)
    script = 'mount -t tmpfs -o ro tmpfs "$0" || exit 99; exec "$@"'
    wrapper = ["unshare", "-rm", "sh", "-c", script, str(readonly)]
    done = run_batch(local, inputs, readonly / "out.jsonl", "--state", str(state), wrapper=wrapper)
    one_line_error(done, "cannot write", "out.jsonl", "Read-only file system")
