"""Batch policies: :class:`RetryPolicy` (which failed inferences ``map`` submits again).

A retry is always a new inference (a new ``predict_async``, a new inference id); an inference
that may have been accepted (:class:`SubmissionUncertainError`) is never retried.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._exceptions import AsyncInferenceModelError, PollingTimeoutError, SubmissionUncertainError

__all__ = ["MIN_FINISHED_FOR_RATIO", "RetryPolicy", "check_failure_ratio"]

MIN_FINISHED_FOR_RATIO = 20
"""``max_failure_ratio`` is checked once at least this many inputs have finished."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Which failed inferences a batch submits again, how often and how soon.

    Attributes:
        attempts: Total tries per input (2: one retry), at least 1.
        model_errors: Retry :class:`AsyncInferenceModelError` failures: True for all of them,
            False for none, or regular expressions: only failures whose text (the failure
            file's content) one of them matches (``re.search``).
        timeouts: Also retry :class:`PollingTimeoutError` (the timed-out inference may still
            run: its result is then ignored).
        any_error: Retry every error (submission refusals included), except
            :class:`SubmissionUncertainError`.
        backoff: Seconds before the first retry; doubles with each retry.
        max_backoff: Longest wait between tries, in seconds.
        jitter: Fraction of each wait drawn at random (0: exact waits; 0.5: between half and
            all of it).

    Raises:
        TypeError / ValueError: at construction, for a value of the wrong type or range, or a
            pattern that is not a valid regular expression.
    """

    attempts: int = 3
    model_errors: bool | Sequence[str] = True
    timeouts: bool = False
    any_error: bool = False
    backoff: float = 1.0
    max_backoff: float = 30.0
    jitter: float = 0.5
    _patterns: tuple[re.Pattern[str], ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise TypeError(
                f"RetryPolicy(attempts=...) must be an int (total tries per input), got "
                f"{type(self.attempts).__name__}: {self.attempts!r}"
            )
        if self.attempts < 1:
            raise ValueError(
                f"RetryPolicy(attempts=...) is the total number of tries, at least 1 (1: no "
                f"retry), got {self.attempts}"
            )
        object.__setattr__(self, "_patterns", _compile(self.model_errors))
        if not isinstance(self.model_errors, bool):
            object.__setattr__(self, "model_errors", tuple(self.model_errors))
        for name in ("timeouts", "any_error"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"RetryPolicy({name}=...) must be True or False")
        for name in ("backoff", "max_backoff", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(
                    f"RetryPolicy({name}=...) must be a number, got {type(value).__name__}"
                )
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"RetryPolicy({name}=...) must be finite and >= 0, got {value}")
        if self.max_backoff < self.backoff:
            raise ValueError(
                f"RetryPolicy(max_backoff={self.max_backoff}) is less than backoff="
                f"{self.backoff}; raise max_backoff or lower backoff"
            )
        if self.jitter > 1:
            raise ValueError(f"RetryPolicy(jitter=...) must be between 0 and 1, got {self.jitter}")

    def retries(self, error: BaseException, tries: int) -> bool:
        """Whether an input whose try number ``tries`` ended with ``error`` is tried again."""
        if tries >= self.attempts or isinstance(error, SubmissionUncertainError):
            return False
        if self.any_error:
            return isinstance(error, Exception)
        if isinstance(error, PollingTimeoutError):
            return self.timeouts
        if isinstance(error, AsyncInferenceModelError):
            if self.model_errors is True:
                return True
            return any(pattern.search(error.message) for pattern in self._patterns)
        return False

    def delay(self, tries: int) -> float:
        """Seconds to wait after try number ``tries`` failed (jittered)."""
        wait = min(self.max_backoff, self.backoff * 2.0 ** (tries - 1))
        return wait * (1 - self.jitter * random.random())


def _compile(model_errors: object) -> tuple[re.Pattern[str], ...]:
    if isinstance(model_errors, bool):
        return ()
    if isinstance(model_errors, str) or not isinstance(model_errors, Sequence):
        raise TypeError(
            "RetryPolicy(model_errors=...) must be True, False or a list of regular "
            f"expressions, got {type(model_errors).__name__}: {model_errors!r}"
        )
    patterns = []
    for pattern in model_errors:
        if not isinstance(pattern, str):
            raise TypeError(
                f"RetryPolicy(model_errors=...) patterns must be strings, got {pattern!r}"
            )
        try:
            patterns.append(re.compile(pattern))
        except re.error as error:
            raise ValueError(
                f"RetryPolicy(model_errors=...): {pattern!r} is not a valid regular "
                f"expression ({error})"
            ) from None
    return tuple(patterns)


def check_failure_ratio(value: object) -> float | None:
    """``max_failure_ratio`` as given (None: no limit); TypeError / ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"max_failure_ratio must be a number between 0 and 1 (or None), got "
            f"{type(value).__name__}: {value!r}"
        )
    if not 0 <= value < 1:
        raise ValueError(
            f"max_failure_ratio must be >= 0 and < 1 (the failed share of finished inputs "
            f"that stops the batch), got {value}"
        )
    return float(value)
