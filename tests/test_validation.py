"""Bad arguments fail at construction (or before any request) and say how to fix them."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from aiosagemaker import AsyncPredictor, WaiterConfig
from aiosagemaker._config import MAX_WAIT_SECONDS
from helpers import make_predictor


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"transient_retries": -1}, ValueError, r"transient_retries must be >= 0 \(0 for no"),
        ({"transient_retries": "3"}, TypeError, "transient_retries must be an int.*str"),
        ({"transient_retries": None}, TypeError, "transient_retries must be an int.*NoneType"),
        ({"transient_retries": True}, TypeError, "transient_retries must be an int.*bool"),
        ({"default_bucket": 5}, TypeError, "default_bucket must be a bucket name.*int"),
        ({"default_bucket": "bu cket"}, ValueError, "not a valid S3 bucket name.*no spaces"),
        ({"default_bucket": ""}, ValueError, "not a valid S3 bucket name"),
        ({"input_prefix": None}, TypeError, "input_prefix must be a string.*'' for none"),
        ({"input_prefix": "a\nb"}, ValueError, "input_prefix must not contain control"),
        ({"upload_extra_args": {"Nope": 1}}, ValueError, r"unknown keys \['Nope'\].*allowed"),
        ({"upload_extra_args": {"ContentType": "x"}}, ValueError, "comes from the serializer"),
        ({"upload_extra_args": ["ACL"]}, TypeError, "upload_extra_args must be a dict"),
        ({"upload_extra_args": {"Metadata": {"a": 1}}}, TypeError, "dict of str to str"),
        ({"expected_bucket_owner": "12345"}, ValueError, "12-digit AWS account id"),
        ({"expected_bucket_owner": 123456789012}, ValueError, "a string like"),
    ],
)
def test_predictor_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make_predictor(**kwargs)


def test_the_allowed_upload_keys_are_named() -> None:
    with pytest.raises(ValueError, match="SSEKMSKeyID") as caught:
        make_predictor(upload_extra_args={"SSEKMSKeyID": "k"})
    for name in ("SSEKMSKeyId", "ServerSideEncryption", "Tagging", "StorageClass", "ACL"):
        assert name in str(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("input_path", "match"),
    [
        ("s3://b/k\n", "control characters"),
        ("s3://bucket/k\tey", "control characters"),
        ("s3://bu cket/key", "not a valid S3 bucket name"),
        ("s3://bucket_/key", "not a valid S3 bucket name"),
    ],
)
async def test_bad_input_paths(input_path: str, match: str) -> None:
    predictor = make_predictor()
    with pytest.raises(ValueError, match=match):
        await predictor.predict_async(input_path=input_path)
    assert predictor.engine_stats is None  # refused before opening anything


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delay": 1e300, "backoff": 1e300}, "delay=1e.300 is more than"),
        ({"delay": 1, "backoff": 1e300}, "the total wait overflows"),
        ({"delay": 1, "backoff": 2, "max_attempts": 60}, "the total wait is .* seconds"),
        ({"delay": 3600, "max_attempts": 10_000}, "lower delay, backoff or max_attempts"),
        ({"delay": 1, "timeout": 1e12}, "timeout=1000000000000.0 is more than"),
        ({"delay": 1, "max_delay": 1e300, "backoff": 2}, "max_delay=1e.300"),
    ],
)
def test_waiter_config_rejects_overflowing_schedules(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WaiterConfig(**kwargs)


def test_waiter_config_growth_is_capped_when_a_timeout_bounds_it() -> None:
    config = WaiterConfig(max_attempts=None, delay=1, backoff=1e300, timeout=60)
    delays = config.delays()
    assert [next(delays) for _ in range(5)] == [1, MAX_WAIT_SECONDS, *[MAX_WAIT_SECONDS] * 3]
    long = WaiterConfig(max_attempts=2000, delay=0.5, backoff=1.5, max_delay=15)
    assert all(math.isfinite(d) for d in long.delays())


@pytest.mark.usefixtures("aws_env")
def test_a_predictor_reused_after_its_loop_closed_says_so() -> None:
    predictor: AsyncPredictor = make_predictor()

    async def open_it() -> None:
        await predictor._open()  # and never closed: the loop ends under it

    async def use_it() -> None:
        await predictor.predict_async({"output": 1})

    asyncio.run(open_it())
    with pytest.raises(RuntimeError, match=r"opened in another event loop \(now closed\)"):
        asyncio.run(use_it())
