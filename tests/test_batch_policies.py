"""Batch policies of ``map`` and ``aiosagemaker batch``: retries, failure ratio, S3 cleanup.

Inputs that fail a chosen number of times run on endpoints created through the emulator's
control plane with :func:`flaky_model` (this module) as their model.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError

from aiosagemaker import (
    AsyncInferenceError,
    AsyncInferenceModelError,
    BatchFailureRatioExceeded,
    BatchOutcome,
    PollingTimeoutError,
    RetryPolicy,
    SubmissionUncertainError,
)
from aiosagemaker.local import LocalEndpoint
from cli_helpers import read_outcomes, run_batch
from conftest import BUCKET
from helpers import key_of, make_predictor, sync_client

FLAKY = "policies-flaky"
FLAKY_CLI = "policies-flaky-cli"
QUICK = RetryPolicy(attempts=3, backoff=0, max_backoff=0, jitter=0)

_TRIES: Counter[str] = Counter()
_TRIES_LOCK = threading.Lock()


def flaky_model(body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
    """``{"key": k, "fail_times": n, "output": v}``: fails the first n tries of key k.

    ``{"fatal": text}`` always fails with ``fatal: text``.
    """
    spec = json.loads(body)
    if "fatal" in spec:
        raise RuntimeError(f"fatal: {spec['fatal']}")
    with _TRIES_LOCK:
        _TRIES[spec["key"]] += 1
        tries = _TRIES[spec["key"]]
    if tries <= spec.get("fail_times", 0):
        raise RuntimeError(f"transient failure, try {tries}")
    return json.dumps(spec.get("output")).encode(), "application/json"


def _create_flaky(local: LocalEndpoint, name: str) -> None:
    sagemaker = sync_client(local, "sagemaker")
    sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": "unused",
            "Environment": {"AIOSAGEMAKER_LOCAL_MODEL": f"{__name__}:flaky_model"},
        },
        ExecutionRoleArn="arn:aws:iam::123456789012:role/unused",
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        AsyncInferenceConfig={
            "OutputConfig": {
                "S3OutputPath": f"s3://{BUCKET}/{name}-out/",
                "S3FailurePath": f"s3://{BUCKET}/{name}-failed/",
            },
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 16},
        },
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    deadline = time.monotonic() + 60
    while sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
        assert time.monotonic() < deadline, f"{name} never came into service"
        time.sleep(0.05)  # the control plane has no event to wait on


@pytest.fixture(scope="module")
def flaky(local: LocalEndpoint) -> str:
    """Endpoints running :func:`flaky_model` (one for map, one for the command)."""
    _create_flaky(local, FLAKY)
    _create_flaky(local, FLAKY_CLI)
    return FLAKY


def tries(fail_times: int, output: Any) -> dict[str, Any]:
    """A payload failing its first ``fail_times`` tries, then returning ``output``."""
    return {"key": uuid.uuid4().hex, "fail_times": fail_times, "output": output}


async def _exists(s3: Any, uri: str) -> bool:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    try:
        await s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


async def _keys(s3: Any, prefix: str) -> list[str]:
    listed = await s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", ())]


# -- RetryPolicy -------------------------------------------------------------------------------


def test_retry_policy_is_validated_with_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"attempts=.*at least 1"):
        RetryPolicy(attempts=0)
    with pytest.raises(TypeError, match=r"attempts=.*must be an int"):
        RetryPolicy(attempts=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'\(' is not a valid regular expression"):
        RetryPolicy(model_errors=["("])
    with pytest.raises(TypeError, match=r"list of regular expressions"):
        RetryPolicy(model_errors="transient")
    with pytest.raises(ValueError, match=r"max_backoff=1.*less than backoff=5"):
        RetryPolicy(backoff=5, max_backoff=1)
    with pytest.raises(ValueError, match=r"jitter=.*between 0 and 1"):
        RetryPolicy(jitter=2)
    with pytest.raises(ValueError, match=r"backoff=.*finite and >= 0"):
        RetryPolicy(backoff=-1)


def test_retry_policy_chooses_the_errors_it_retries() -> None:
    transient = AsyncInferenceModelError("transient: try again")
    fatal = AsyncInferenceModelError("fatal: bad row")
    timeout = PollingTimeoutError("gave up", "s3://b/k", 1.0)
    uncertain = SubmissionUncertainError("lost")
    policy = RetryPolicy(attempts=2, model_errors=[r"^transient"])
    assert policy.retries(transient, 1) and not policy.retries(transient, 2)
    assert not policy.retries(fatal, 1) and not policy.retries(timeout, 1)
    assert RetryPolicy(timeouts=True).retries(timeout, 1)
    assert not RetryPolicy(model_errors=False).retries(fatal, 1)
    everything = RetryPolicy(any_error=True)
    assert everything.retries(ValueError("x"), 1) and everything.retries(timeout, 2)
    assert not everything.retries(uncertain, 1)  # may have been accepted: never again
    waits = RetryPolicy(backoff=1, max_backoff=3, jitter=0)
    assert [waits.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 3, 3]
    assert all(0.5 <= RetryPolicy(backoff=1, jitter=0.5).delay(1) <= 1 for _ in range(50))
    assert RetryPolicy(model_errors=["a"]) == RetryPolicy(model_errors=("a",))


@pytest.mark.anyio
async def test_map_refuses_bad_policy_arguments(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        with pytest.raises(TypeError, match=r"retry must be a RetryPolicy"):
            predictor.map([1], retry=3)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"max_failure_ratio must be >= 0 and < 1"):
            predictor.map([1], max_failure_ratio=1.5)
        with pytest.raises(ValueError, match=r"cleanup must be 'inputs', 'all' or None"):
            predictor.map([1], cleanup="outputs")  # type: ignore[arg-type]


# -- retries -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_map_retries_failed_inferences_as_new_ones(
    aws_env: dict[str, str], local: LocalEndpoint, flaky: str
) -> None:
    payloads = [tries(i % 3, i) for i in range(12)] + [{"fatal": "row 12"}]
    before = local.stats(flaky).accepted
    outcomes: list[BatchOutcome] = []
    async with (
        make_predictor(flaky) as predictor,
        predictor.map(payloads, concurrency=5, retry=QUICK) as run,
    ):
        async for outcome in run:
            outcomes.append(outcome)
    assert sorted(o.index for o in outcomes) == list(range(13))
    by_index = {o.index: o for o in outcomes}
    for i in range(12):
        assert by_index[i].ok and by_index[i].result == i
        assert by_index[i].attempts == i % 3 + 1
    fatal = by_index[12]
    assert isinstance(fatal.exception, AsyncInferenceModelError) and fatal.attempts == 3
    assert "fatal: row 12" in str(fatal.exception)
    # every try was a new inference: 12 + 4 x 1 + 4 x 2 + 3
    assert local.stats(flaky).accepted - before == 12 + 4 + 8 + 3
    ids = [o.response.inference_id for o in outcomes if o.response is not None]
    assert len(set(ids)) == 13


@pytest.mark.anyio
async def test_map_retries_only_the_failures_its_patterns_match(
    aws_env: dict[str, str], local: LocalEndpoint, flaky: str
) -> None:
    policy = RetryPolicy(attempts=4, model_errors=[r"transient failure"], backoff=0, max_backoff=0)
    payloads = [tries(2, "late"), {"fatal": "no retry"}, tries(5, "never")]
    async with make_predictor(flaky) as predictor, predictor.map_ordered(payloads) as run:
        plain = [o async for o in run]
    assert [o.attempts for o in plain] == [1, 1, 1]  # map_ordered: no policy, one try each
    async with make_predictor(flaky) as predictor:
        payloads = [tries(2, "late"), {"fatal": "no retry"}, tries(5, "never")]
        async with predictor.map(payloads, retry=policy, ordered=True) as run:
            late, fatal, never = [o async for o in run]
    assert late.ok and late.result == "late" and late.attempts == 3
    assert not fatal.ok and fatal.attempts == 1
    assert isinstance(never.exception, AsyncInferenceModelError) and never.attempts == 4
    assert "try 4" in str(never.exception)  # the last try's error


# -- max_failure_ratio ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_map_stops_submitting_past_the_failure_ratio(
    aws_env: dict[str, str], local: LocalEndpoint
) -> None:
    payloads = [{"output": i} if i % 4 == 0 else {"fail": f"bad {i}"} for i in range(200)]
    before = local.stats("scripted").accepted
    outcomes: list[BatchOutcome] = []

    async def consume() -> None:
        async with predictor.map(payloads, concurrency=4, max_failure_ratio=0.5) as run:
            async for outcome in run:
                outcomes.append(outcome)

    async with make_predictor() as predictor:
        with pytest.raises(BatchFailureRatioExceeded) as stopped:
            await consume()
    error = stopped.value
    assert isinstance(error, AsyncInferenceError)
    assert 20 <= len(outcomes) < 200  # everything in flight was finished and yielded
    assert error.done == len(outcomes) and error.not_submitted == 200 - len(outcomes)
    assert error.failed == sum(not o.ok for o in outcomes) and error.limit == 0.5
    assert local.stats("scripted").accepted - before == len(outcomes)
    assert "max_failure_ratio=0.5" in str(error)


@pytest.mark.anyio
async def test_map_under_the_failure_ratio_runs_everything(aws_env: dict[str, str]) -> None:
    payloads = [{"fail": "bad"} if i % 10 == 0 else {"output": i} for i in range(40)]
    async with make_predictor() as predictor, predictor.map(payloads, max_failure_ratio=0.2) as run:
        outcomes = [o async for o in run]
    assert len(outcomes) == 40 and sum(not o.ok for o in outcomes) == 4


# -- cleanup -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cleanup_inputs_deletes_only_what_map_uploaded(
    aws_env: dict[str, str], s3: Any, flaky: str
) -> None:
    prefix = f"policies-inputs-{uuid.uuid4().hex}"
    given = f"s3://{BUCKET}/{prefix}/user-given.json"
    await s3.put_object(Bucket=BUCKET, Key=key_of(given), Body=json.dumps(tries(0, "mine")))
    payloads = [tries(i % 2, i) for i in range(8)] + [{"fatal": "kept"}]
    async with make_predictor(flaky, input_prefix=prefix, inline=False) as predictor:
        mine = await (await predictor.predict_async(input_path=given))
        async with predictor.map(payloads, retry=QUICK, cleanup="inputs") as run:
            outcomes = [o async for o in run]
    assert mine == "mine"
    assert sum(o.attempts for o in outcomes) == 8 + 4 + 3  # every try uploaded an input
    assert await _keys(s3, prefix) == [key_of(given)]  # the user's input stays
    for outcome in outcomes:
        assert outcome.response is not None
        if outcome.ok:
            assert await _exists(s3, outcome.response.output_path)
        else:
            assert outcome.response.failure_path is not None
            assert await _exists(s3, outcome.response.failure_path)


@pytest.mark.anyio
async def test_cleanup_all_deletes_inputs_and_read_results(
    aws_env: dict[str, str], s3: Any, flaky: str
) -> None:
    prefix = f"policies-all-{uuid.uuid4().hex}"
    given = f"s3://{BUCKET}/{prefix}/user-given.json"
    await s3.put_object(Bucket=BUCKET, Key=key_of(given), Body=json.dumps(tries(0, "mine")))
    payloads = [tries(0, i) for i in range(6)] + [{"fatal": "read"}]
    async with make_predictor(flaky, input_prefix=prefix, inline=False) as predictor:
        user = await predictor.predict_async(input_path=given)
        assert await user == "mine"
        async with predictor.map(payloads, cleanup="all") as run:
            outcomes = [o async for o in run]
    assert await _keys(s3, prefix) == [key_of(given)]
    assert await _exists(s3, user.output_path)  # not map's: untouched
    assert sorted(o.result for o in outcomes if o.ok) == list(range(6))
    for outcome in outcomes:
        assert outcome.response is not None
        assert not await _exists(s3, outcome.response.output_path)
        assert outcome.response.failure_path is not None
        assert not await _exists(s3, outcome.response.failure_path)


# -- the command -------------------------------------------------------------------------------


def _batch(local: LocalEndpoint, inputs: Path, output: Path, *extra: str) -> Any:
    return run_batch(local, inputs, output, "--no-inline", *extra, endpoint=FLAKY_CLI)


def _list(local: LocalEndpoint, prefix: str) -> list[str]:
    listed = sync_client(local, "s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", ())]


def test_cli_retry_records_every_attempt_and_cleans_up(
    local: LocalEndpoint, flaky: str, tmp_path: Path
) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [tries(i % 3, i) for i in range(9)] + [{"fatal": "no retry"}]
    inputs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = _batch(
        local, inputs, output, "--retry", "2", "--retry-on", "transient failure", "--cleanup", "all"
    )
    assert done.returncode == 0, done.stderr
    outcomes = read_outcomes(output)
    assert [o.get("result") for o in outcomes] == [*range(9), None]
    assert "fatal: no retry" in outcomes[9]["error"]["message"]
    with sqlite3.connect(tmp_path / "out.jsonl.state.db") as db:
        attempts = db.execute("SELECT idx, inference_id FROM attempts").fetchall()
    per_input = Counter(idx for idx, _ in attempts)
    assert [per_input[i] for i in range(10)] == [i % 3 + 1 for i in range(9)] + [1]
    assert len({inference_id for _, inference_id in attempts}) == len(attempts) == 19
    assert {o["inference_id"] for o in outcomes} <= {i for _, i in attempts}
    assert _list(local, f"async-endpoint-inputs/{FLAKY_CLI}") == []
    assert _list(local, f"{FLAKY_CLI}-out/") == []
    assert _list(local, f"{FLAKY_CLI}-failed/") == []


def test_cli_refuses_bad_retry_flags(local: LocalEndpoint, tmp_path: Path) -> None:
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inputs.write_text("{}\n")
    for flags, fragment in (
        (("--retry", "-1"), "must be >= 0"),
        (("--retry", "1", "--retry-on", "("), "is not a valid regular expression"),
        (("--cleanup", "outputs"), "invalid choice"),
        (("--retry-on", "x"), "add --retry N"),
    ):
        refused = _batch(local, inputs, output, *flags)
        assert refused.returncode == 2 and fragment in refused.stderr, refused.stderr
        assert not output.exists()


@pytest.mark.anyio
async def test_leaving_early_cancels_pending_retries(aws_env: dict[str, str]) -> None:
    slow = RetryPolicy(attempts=5, backoff=600, max_backoff=600, jitter=0)
    async with make_predictor() as predictor:
        with anyio.fail_after(60):  # the backoff is 10 minutes: leaving must not wait for it
            async with predictor.map([{"fail": "again"}, {"output": 1}], retry=slow) as run:
                first = await run.__anext__()
        assert first.ok and first.result == 1
        assert [o async for o in run] == []  # closed
