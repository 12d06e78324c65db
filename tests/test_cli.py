"""The ``aiosagemaker`` command as a user runs it: subprocesses against the emulator."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from aiosagemaker.local import LocalEndpoint
from cli_helpers import (
    UNCERTAIN,
    read_outcomes,
    run_batch,
    run_cli,
    start_batch,
    wait_for,
    write_inputs,
)
from conftest import BUCKET


def test_batch_runs_every_input_once(local: LocalEndpoint, tmp_path: Path) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_inputs(inputs, 60)
    with inputs.open("a") as file:
        file.write("\nnot json\n")
    before = local.stats("scripted").accepted
    done = run_batch(local, inputs, output, "--concurrency", "16")
    assert done.returncode == 0, done.stderr
    assert "done: ok 60, failed 1" in done.stderr
    outcomes = read_outcomes(output)
    assert [o["index"] for o in outcomes] == [*range(60), 61]  # line 61 is blank
    assert [o["result"] for o in outcomes[:60]] == list(range(60))
    assert outcomes[60]["error"]["type"] == "ValueError"
    assert "input line 62 is not JSON" in outcomes[60]["error"]["message"]
    assert local.stats("scripted").accepted - before == 60
    again = run_batch(local, inputs, output)
    assert again.returncode == 0 and read_outcomes(output) == outcomes
    assert local.stats("scripted").accepted - before == 60  # nothing submitted again


def test_batch_survives_kill_9_and_resumes_exactly_once(
    local: LocalEndpoint, tmp_path: Path
) -> None:
    count = 300
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    state = tmp_path / "state.db"
    write_inputs(inputs, count)
    before = local.stats("scripted").accepted
    rng = random.Random(1234)
    args = ("--state", str(state), "--concurrency", "32", "--uncertain-wait", "10")
    for _ in range(3):
        process = start_batch(local, inputs, output, *args, stderr=subprocess.DEVNULL)
        wait_for(lambda: state.exists(), 60)
        time.sleep(rng.uniform(0.3, 1.5))  # a random point of the run, not a synchronisation
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    final = run_batch(local, inputs, output, *args)
    assert final.returncode == 0, final.stderr
    outcomes = read_outcomes(output)
    assert [o["index"] for o in outcomes] == list(range(count))  # each input exactly once
    ok = [o for o in outcomes if "result" in o]
    uncertain = [o for o in outcomes if o.get("error", {}).get("type") == UNCERTAIN]
    assert len(ok) + len(uncertain) == count
    assert all(o["result"] == o["index"] for o in ok)
    assert len({o["inference_id"] for o in ok}) == len(ok)
    # no duplicate inference: the emulator ran each result's inference once, and at most the
    # uncertain ones besides (a kill during the call: accepted or not, never sent again)
    assert len(ok) <= local.stats("scripted").accepted - before <= len(ok) + len(uncertain)


def test_ctrl_c_stops_cleanly_and_resumes(local: LocalEndpoint, tmp_path: Path) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    state = tmp_path / "state.db"
    inputs.write_text("".join(json.dumps({"output": i, "sleep": 1}) + "\n" for i in range(40)))
    args = ("--state", str(state), "--concurrency", "8")
    before = local.stats("scripted").accepted
    process = start_batch(local, inputs, output, *args)
    # a point in the middle of the run: 8 inputs accepted, most of the 40 (1 s each) to come
    wait_for(lambda: local.stats("scripted").accepted - before >= 8, 60)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "run the same command again to resume" in stderr
    final = run_batch(local, inputs, output, *args)
    assert final.returncode == 0, final.stderr
    assert [o["result"] for o in read_outcomes(output)] == list(range(40))


def test_invoke_and_result(local: LocalEndpoint) -> None:
    hello = '{"output": "hi"}'
    submitted = run_cli(local, "invoke", "scripted", "--data", hello, "--bucket", BUCKET)
    assert submitted.returncode == 0, submitted.stderr
    printed = json.loads(submitted.stdout)
    assert printed["output_location"].startswith("s3://") and printed["inference_id"]
    fetched = run_cli(local, "result", printed["token"])
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout) == "hi"
    waited = run_cli(local, "invoke", "scripted", "--data", '{"output": 7}', "--wait",
                     "--bucket", BUCKET)  # fmt: skip
    assert json.loads(waited.stdout)["result"] == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["invoke", "scripted", "--data", "not json"], "--data is not JSON"),
        (["invoke", "scripted"], "one of the arguments --data --file is required"),
        (["batch", "scripted", "missing.jsonl", "--output", "o.jsonl"], "no such input file"),
        (["batch", "scripted", "x", "--output", "o", "--concurrency", "0"], "must be >= 1"),
        (["result", "%%%"], "not an aiosagemaker continuation token"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    local: LocalEndpoint, tmp_path: Path, args: list[str], message: str
) -> None:
    done = run_cli(local, *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
