"""Configuration: WaiterConfig, S3Options (a predictor's S3 settings), AsyncInferenceConfig."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._limits import (
    MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE_MAX,
    MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE_MIN,
)

__all__ = [
    "ALLOWED_UPLOAD_ARGS",
    "DEFAULT_WAITER_CONFIG",
    "MAX_WAIT_SECONDS",
    "AsyncInferenceConfig",
    "S3Options",
    "WaiterConfig",
]

MAX_WAIT_SECONDS = 366 * 24 * 3600.0
"""Longest delay, timeout or total wait a WaiterConfig may describe (a year)."""


def _check_number(name: str, value: object, *, integer: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        kind = "an int" if integer else "a number (int or float)"
        raise TypeError(
            f"WaiterConfig.{name} must be {kind}, got {type(value).__name__}: {value!r}"
        )
    if value != value or value in (float("inf"), float("-inf")):  # NaN or infinite
        raise ValueError(f"WaiterConfig.{name} must be finite, got {value!r}")


@dataclass(frozen=True, slots=True)
class WaiterConfig:
    """How long and how often to look for a result.

    With only the SDK's two arguments it behaves like the SDK: the first check is immediate,
    then ``delay`` seconds pass between checks, ``max_attempts`` checks in all.

    Args:
        max_attempts: Number of checks (the first one included). ``None`` means unlimited and
            needs ``timeout``.
        delay: Seconds before the second check.
        backoff: Factor applied to the delay after each check (1.0 keeps it fixed).
        max_delay: Upper bound for one delay when ``backoff`` grows it.
        jitter: Fraction (0 to 1) of each delay taken off at random, to spread many waiters.
        timeout: Overall limit in seconds; the last sleep is shortened to end on it and a final
            check is made there.

    Example:
        >>> WaiterConfig(max_attempts=120, delay=0.5, backoff=1.5, max_delay=10, timeout=600)
    """

    max_attempts: int | None = 60
    delay: float = 15
    backoff: float = field(default=1.0, kw_only=True)
    max_delay: float | None = field(default=None, kw_only=True)
    jitter: float = field(default=0.0, kw_only=True)
    timeout: float | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.max_attempts is None:
            if self.timeout is None:
                raise ValueError(
                    "WaiterConfig(max_attempts=None) waits without an attempt limit and needs "
                    "timeout=<seconds>; give one of the two"
                )
        else:
            _check_number("max_attempts", self.max_attempts, integer=True)
            if self.max_attempts < 1:
                raise ValueError(
                    f"WaiterConfig.max_attempts must be at least 1, got {self.max_attempts}"
                )
        _check_number("delay", self.delay)
        if self.delay <= 0:
            raise ValueError(f"WaiterConfig.delay must be > 0 seconds, got {self.delay!r}")
        _check_number("backoff", self.backoff)
        if self.backoff < 1:
            raise ValueError(f"WaiterConfig.backoff must be >= 1.0, got {self.backoff!r}")
        if self.max_delay is not None:
            _check_number("max_delay", self.max_delay)
            if self.max_delay < self.delay:
                raise ValueError(
                    f"WaiterConfig.max_delay ({self.max_delay!r}) must be >= delay ({self.delay!r})"
                )
        _check_number("jitter", self.jitter)
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"WaiterConfig.jitter must be between 0 and 1, got {self.jitter!r}")
        if self.timeout is not None:
            _check_number("timeout", self.timeout)
            if self.timeout <= 0:
                raise ValueError(f"WaiterConfig.timeout must be > 0 seconds, got {self.timeout!r}")
        self._check_bounds()

    def _check_bounds(self) -> None:
        """Reject delays, timeouts and totals too large to schedule (or that overflow)."""
        for name in ("delay", "max_delay", "timeout"):
            value = getattr(self, name)
            if value is not None and value > MAX_WAIT_SECONDS:
                raise ValueError(
                    f"WaiterConfig.{name}={value!r} is more than {MAX_WAIT_SECONDS:.0f} seconds "
                    "(a year); pass a shorter one"
                )
        if self.timeout is not None:
            return  # the timeout bounds the total; each delay is capped when it grows
        total = _total_wait(self.delay, self.backoff, self.max_delay, self.max_attempts or 1)
        if total > MAX_WAIT_SECONDS:
            shown = "overflows" if math.isinf(total) else f"is {total:.3g} seconds"
            raise ValueError(
                f"WaiterConfig(max_attempts={self.max_attempts}, delay={self.delay!r}, "
                f"backoff={self.backoff!r}, max_delay={self.max_delay!r}): the total wait "
                f"{shown}, more than {MAX_WAIT_SECONDS:.0f} (a year); lower delay, backoff "
                "or max_attempts, set max_delay, or give a timeout"
            )

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Yield the sleeps between consecutive checks (one fewer than the attempts)."""
        rng = rng or random.Random()
        delay = self._first_delay()
        count = 0
        while self.max_attempts is None or count < self.max_attempts - 1:
            count += 1
            yield delay * (1 - self.jitter * rng.random())
            delay = self._grown(delay)

    def _first_delay(self) -> float:
        """The sleep after the first check, before jitter."""
        return min(float(self.delay), self._delay_cap())

    def _grown(self, delay: float) -> float:
        """The sleep that follows one of ``delay``, before jitter (backoff, then the cap)."""
        return min(delay * self.backoff, self._delay_cap())

    def _delay_cap(self) -> float:
        return MAX_WAIT_SECONDS if self.max_delay is None else float(self.max_delay)

    def _to_request_dict(self) -> dict[str, Any]:
        """The botocore waiter dict the SDK builds (``Delay`` / ``MaxAttempts``)."""
        return {"Delay": self.delay, "MaxAttempts": self.max_attempts}


def _total_wait(delay: float, backoff: float, max_delay: float | None, attempts: int) -> float:
    """The sum of the sleeps of ``attempts`` checks without jitter (inf when it overflows)."""
    sleeps = attempts - 1
    cap = math.inf if max_delay is None else float(max_delay)
    if sleeps <= 0:
        return 0.0
    if backoff == 1:
        return min(delay, cap) * sleeps
    growing = sleeps if math.isinf(cap) else min(sleeps, math.ceil(math.log(cap / delay, backoff)))
    if math.log(delay) + growing * math.log(backoff) - math.log(backoff - 1) > 745:
        return math.inf
    try:
        grown = delay * (backoff**growing - 1) / (backoff - 1)
    except OverflowError:
        return math.inf
    return grown + (sleeps - growing) * cap if sleeps > growing else grown


DEFAULT_WAITER_CONFIG = WaiterConfig(
    max_attempts=None, delay=0.5, backoff=1.5, max_delay=15, timeout=900
)
"""What ``await response`` and ``predict()`` wait with unless told otherwise: first checks
within half a second, backing off to one every 15 s, for the SDK's 15 minutes (60 x 15 s)."""


class WaiterConfigTypeError(ValueError, TypeError):
    """``waiter_config`` is not a WaiterConfig: a ``ValueError``, as the SDK's ``get_result``
    raises, and a ``TypeError``, as the constructor and ``map`` used to raise."""


def check_waiter_config(value: object, *, none: str | None = None) -> None:
    """Raise :class:`WaiterConfigTypeError` unless ``value`` is a WaiterConfig.

    Args:
        none: What None means where it is allowed (said in the message); None: not allowed.
    """
    if isinstance(value, WaiterConfig) or (value is None and none is not None):
        return
    raise WaiterConfigTypeError(
        f"waiter_config should be a WaiterConfig object, got {type(value).__name__}; use "
        "aiosagemaker.WaiterConfig(max_attempts=..., delay=...)"
        + (f", or None {none}" if none is not None else "")
    )


def check_positive(what: str, value: object, *, integer: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive number (an int with ``integer``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int if integer else (int, float))
        or not value > 0
    ):
        kind = "a positive int" if integer else "a positive number"
        raise ValueError(f"{what} must be {kind}, got {value!r}")


ALLOWED_UPLOAD_ARGS = frozenset(
    {
        "ACL",
        "BucketKeyEnabled",
        "CacheControl",
        "ChecksumAlgorithm",
        "ContentDisposition",
        "ContentEncoding",
        "ContentLanguage",
        "Expires",
        "GrantFullControl",
        "GrantRead",
        "GrantReadACP",
        "GrantWriteACP",
        "Metadata",
        "ObjectLockLegalHoldStatus",
        "ObjectLockMode",
        "ObjectLockRetainUntilDate",
        "RequestPayer",
        "SSECustomerAlgorithm",
        "SSECustomerKey",
        "SSECustomerKeyMD5",
        "SSEKMSEncryptionContext",
        "SSEKMSKeyId",
        "ServerSideEncryption",
        "StorageClass",
        "Tagging",
        "WebsiteRedirectLocation",
    }
)
"""boto3's upload ``ExtraArgs`` names (plus ``BucketKeyEnabled``), less the two the library
sets itself: ``ContentType`` (the serializer's) and ``ExpectedBucketOwner`` (its own option)."""

_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")


@dataclass(frozen=True, slots=True)
class S3Options:
    """S3 settings of one predictor, applied to every request it makes.

    Args:
        upload_extra_args: Extra PutObject / CreateMultipartUpload arguments for every input
            upload (``ServerSideEncryption``, ``SSEKMSKeyId``, ``Tagging``, ...); see
            :data:`ALLOWED_UPLOAD_ARGS`.
        expected_bucket_owner: A 12-digit account id sent as ``ExpectedBucketOwner`` on every
            S3 request (S3 answers 403 when the bucket belongs to another account).
    """

    upload_extra_args: Mapping[str, Any] = field(default_factory=dict)
    expected_bucket_owner: str | None = None

    def __post_init__(self) -> None:
        extra = self.upload_extra_args
        if extra is None:
            extra = {}
        if not isinstance(extra, Mapping):
            raise TypeError(
                "upload_extra_args must be a dict of S3 upload arguments (e.g. "
                "{'ServerSideEncryption': 'aws:kms', 'SSEKMSKeyId': '<key arn>'}), got "
                f"{type(extra).__name__}"
            )
        unknown = sorted(str(key) for key in extra if key not in ALLOWED_UPLOAD_ARGS)
        if unknown:
            reserved = {"ContentType", "ExpectedBucketOwner", "Bucket", "Key", "Body"}
            note = (
                " (ContentType comes from the serializer, ExpectedBucketOwner from "
                "expected_bucket_owner=, Bucket/Key/Body from the request)"
                if reserved & set(unknown)
                else ""
            )
            raise ValueError(
                f"upload_extra_args has unknown keys {unknown}{note}; allowed keys are "
                f"{sorted(ALLOWED_UPLOAD_ARGS)}"
            )
        metadata = extra.get("Metadata")
        if metadata is not None and not (
            isinstance(metadata, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
        ):
            raise TypeError(
                f"upload_extra_args['Metadata'] must be a dict of str to str, got {metadata!r}"
            )
        object.__setattr__(self, "upload_extra_args", MappingProxyType(dict(extra)))
        owner = self.expected_bucket_owner
        if owner is not None and not (isinstance(owner, str) and _ACCOUNT_ID.match(owner)):
            raise ValueError(
                "expected_bucket_owner must be the 12-digit AWS account id that owns the "
                f"buckets (a string like '123456789012'), got {owner!r}"
            )


_NOTIFICATION_KEYS = frozenset({"SuccessTopic", "ErrorTopic", "IncludeInferenceResponseIn"})
_INCLUDE_VALUES = frozenset({"SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC"})


def _check_s3_path(name: str, value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.startswith(("s3://", "https://")):
        raise ValueError(f"AsyncInferenceConfig.{name} must be an s3:// URI, got {value!r}")


@dataclass(frozen=True, slots=True)
class AsyncInferenceConfig:
    """Deploy-time async settings of an endpoint (CreateEndpointConfig's AsyncInferenceConfig).

    Args:
        output_path: ``S3OutputPath`` where results are written.
        max_concurrent_invocations_per_instance: ``MaxConcurrentInvocationsPerInstance``
            of ``ClientConfig``.
        kms_key_id: ``KmsKeyId`` used to encrypt results.
        notification_config: ``NotificationConfig`` dict with ``SuccessTopic``, ``ErrorTopic``
            and ``IncludeInferenceResponseIn``.
        failure_path: ``S3FailurePath`` where failure files are written.
    """

    output_path: str | None = None
    max_concurrent_invocations_per_instance: int | None = None
    kms_key_id: str | None = None
    notification_config: Mapping[str, Any] | None = None
    failure_path: str | None = None

    def __post_init__(self) -> None:
        _check_s3_path("output_path", self.output_path)
        _check_s3_path("failure_path", self.failure_path)
        limit = self.max_concurrent_invocations_per_instance
        if limit is not None and (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE_MIN
            <= limit
            <= MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE_MAX
        ):
            raise ValueError(
                "AsyncInferenceConfig.max_concurrent_invocations_per_instance must be an int from "
                f"{MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE_MIN} to "
                f"{MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE_MAX}, got {limit!r}"
            )
        if self.notification_config is not None:
            self._check_notification_config(self.notification_config)

    @staticmethod
    def _check_notification_config(config: Mapping[str, Any]) -> None:
        if not isinstance(config, Mapping):
            raise TypeError(
                "AsyncInferenceConfig.notification_config must be a dict with SuccessTopic, "
                f"ErrorTopic and/or IncludeInferenceResponseIn, got {type(config).__name__}"
            )
        unknown = set(config) - _NOTIFICATION_KEYS
        if unknown:
            raise ValueError(
                f"AsyncInferenceConfig.notification_config has unknown keys {sorted(unknown)}; "
                f"allowed keys are {sorted(_NOTIFICATION_KEYS)}"
            )
        for key in ("SuccessTopic", "ErrorTopic"):
            topic = config.get(key)
            if topic is not None and not (isinstance(topic, str) and topic.startswith("arn:")):
                raise ValueError(
                    f"notification_config[{key!r}] must be an SNS topic ARN, got {topic!r}"
                )
        include = config.get("IncludeInferenceResponseIn", [])
        if isinstance(include, str) or not set(include) <= _INCLUDE_VALUES:
            raise ValueError(
                "notification_config['IncludeInferenceResponseIn'] must be a list drawn from "
                f"{sorted(_INCLUDE_VALUES)}, got {include!r}"
            )

    def to_request_dict(self) -> dict[str, Any]:
        """The ``AsyncInferenceConfig`` dict for CreateEndpointConfig (unset keys left out)."""
        output: dict[str, Any] = {}
        if self.output_path is not None:
            output["S3OutputPath"] = self.output_path
        if self.failure_path is not None:
            output["S3FailurePath"] = self.failure_path
        if self.kms_key_id:
            output["KmsKeyId"] = self.kms_key_id
        if self.notification_config:
            output["NotificationConfig"] = dict(self.notification_config)
        request: dict[str, Any] = {"OutputConfig": output}
        if self.max_concurrent_invocations_per_instance:
            request["ClientConfig"] = {
                "MaxConcurrentInvocationsPerInstance": self.max_concurrent_invocations_per_instance
            }
        return request

    _to_request_dict = to_request_dict
