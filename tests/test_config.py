"""WaiterConfig and AsyncInferenceConfig: SDK defaults, validation, delay schedules."""

from __future__ import annotations

import random
from typing import Any

import pytest

from aiosagemaker import AsyncInferenceConfig, WaiterConfig


def test_waiter_config_sdk_defaults_and_request_dict() -> None:
    config = WaiterConfig()
    assert (config.max_attempts, config.delay) == (60, 15)
    assert config._to_request_dict() == {"Delay": 15, "MaxAttempts": 60}
    assert WaiterConfig(2, 3)._to_request_dict() == {"Delay": 3, "MaxAttempts": 2}


def test_default_schedule_is_the_sdk_fixed_delay() -> None:
    assert list(WaiterConfig(max_attempts=4, delay=2).delays()) == [2, 2, 2]
    assert list(WaiterConfig(max_attempts=1, delay=2).delays()) == []


def test_backoff_is_capped_by_max_delay() -> None:
    config = WaiterConfig(max_attempts=6, delay=1, backoff=2, max_delay=5)
    assert list(config.delays()) == [1, 2, 4, 5, 5]


def test_jitter_takes_off_at_most_the_fraction() -> None:
    config = WaiterConfig(max_attempts=200, delay=1, jitter=0.5)
    delays = list(config.delays(random.Random(7)))
    assert all(0.5 <= d <= 1 for d in delays)
    assert len(set(delays)) > 100


def test_unlimited_attempts_need_a_timeout() -> None:
    config = WaiterConfig(max_attempts=None, delay=1, timeout=30)
    first = config.delays()
    assert [next(first) for _ in range(1000)] == [1.0] * 1000
    with pytest.raises(ValueError, match="needs timeout"):
        WaiterConfig(max_attempts=None)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_attempts": "3"}, TypeError, "max_attempts must be an int"),
        ({"max_attempts": 2.5}, TypeError, "max_attempts must be an int"),
        ({"max_attempts": True}, TypeError, "max_attempts must be an int, got bool"),
        ({"max_attempts": 0}, ValueError, "at least 1"),
        ({"delay": "1"}, TypeError, "delay must be a number"),
        ({"delay": None}, TypeError, "delay must be a number"),
        ({"delay": False}, TypeError, "got bool"),
        ({"delay": 0}, ValueError, "delay must be > 0"),
        ({"delay": -1}, ValueError, "delay must be > 0"),
        ({"delay": float("nan")}, ValueError, "finite"),
        ({"delay": float("inf")}, ValueError, "finite"),
        ({"backoff": 0.5}, ValueError, "backoff must be >= 1.0"),
        ({"delay": 2, "max_delay": 1}, ValueError, "max_delay"),
        ({"jitter": 2}, ValueError, "between 0 and 1"),
        ({"timeout": 0}, ValueError, "timeout must be > 0"),
        ({"timeout": "10"}, TypeError, "timeout must be a number"),
    ],
)
def test_waiter_config_rejects_bad_values(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        WaiterConfig(**kwargs)


def test_waiter_config_is_frozen() -> None:
    config = WaiterConfig()
    with pytest.raises(AttributeError):
        config.delay = 1  # type: ignore[misc]


def test_async_inference_config_without_optional() -> None:
    config = AsyncInferenceConfig()
    assert config.output_path is None
    assert config.failure_path is None
    assert config.to_request_dict() == {"OutputConfig": {}}


def test_async_inference_config_with_optional_fields() -> None:
    notification = {
        "SuccessTopic": "arn:aws:sns:us-east-1:123456789012:ok",
        "ErrorTopic": "arn:aws:sns:us-east-1:123456789012:err",
        "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC"],
    }
    config = AsyncInferenceConfig(
        output_path="s3://bucket/out",
        max_concurrent_invocations_per_instance=8,
        kms_key_id="key-id",
        notification_config=notification,
        failure_path="s3://bucket/fail",
    )
    assert config._to_request_dict() == {
        "OutputConfig": {
            "S3OutputPath": "s3://bucket/out",
            "S3FailurePath": "s3://bucket/fail",
            "KmsKeyId": "key-id",
            "NotificationConfig": notification,
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 8},
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"output_path": "bucket/out"}, "output_path must be an s3:// URI"),
        ({"failure_path": "/tmp/x"}, "failure_path must be an s3:// URI"),
        ({"max_concurrent_invocations_per_instance": 0}, "from 1 to 1000"),
        ({"max_concurrent_invocations_per_instance": 1001}, "from 1 to 1000"),
        ({"notification_config": {"SuccesTopic": "arn:x"}}, "unknown keys \\['SuccesTopic'\\]"),
        ({"notification_config": {"ErrorTopic": "my-topic"}}, "must be an SNS topic ARN"),
        (
            {"notification_config": {"IncludeInferenceResponseIn": ["SUCCESS"]}},
            "IncludeInferenceResponseIn",
        ),
    ],
)
def test_async_inference_config_rejects_bad_values(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AsyncInferenceConfig(**kwargs)


@pytest.mark.anyio
async def test_a_wrong_waiter_config_is_refused_alike_everywhere() -> None:
    """One check: the SDK's ValueError (also a TypeError, as some places raised) and message."""
    from aiosagemaker import AsyncInferenceResponse, AsyncPredictor

    predictor = AsyncPredictor("endpoint")  # nothing is opened: every check runs first
    response = AsyncInferenceResponse(predictor, "s3://bucket/out/1.out", None)
    messages = []
    for make in (
        lambda: AsyncPredictor("endpoint", waiter_config=5),  # type: ignore[arg-type]
        lambda: predictor.map([b"x"], waiter_config=5),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match="should be a WaiterConfig object") as caught:
            make()
        messages.append(caught.value)
    for wait in (
        lambda: predictor.predict(b"x", waiter_config=5),  # type: ignore[arg-type]
        lambda: response.get_result(5),  # type: ignore[arg-type]
        lambda: response.download("result.bin", 5),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match="should be a WaiterConfig object") as caught:
            await wait()
        messages.append(caught.value)
    assert all(isinstance(error, TypeError) for error in messages)
    assert all("waiter_config should be a WaiterConfig object, got int" in str(e) for e in messages)
