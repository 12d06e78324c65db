"""Submitting InvokeEndpointAsync at most once (or at least once), and where results will be.

botocore never retries InvokeEndpointAsync (its client has ``total_max_attempts=1``); this
module resends only what provably did not start (:func:`._aws_errors.classify_submission`),
unless the caller chose ``"at-least-once"``. :class:`OutputNaming` learns the endpoint's
result locations from accepted requests, so that a request whose answer was lost can still
name the location its result will have.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)

from ._aws_errors import SubmitKind, classify_submission

__all__ = [
    "SUBMIT_POLICIES",
    "NotSent",
    "OutputNaming",
    "Refused",
    "SubmitPolicy",
    "Submitter",
    "Uncertain",
    "naming_key",
]

logger = logging.getLogger("aiosagemaker")

SubmitPolicy = Literal["at-most-once", "at-least-once"]
SUBMIT_POLICIES: tuple[SubmitPolicy, ...] = ("at-most-once", "at-least-once")


class Uncertain(Exception):
    """Internal: the request may have been accepted; ``error`` is the last error seen."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


class Refused(Exception):
    """Internal: the request did not run (rejected, or retries used up); ``error`` says why."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


class NotSent(Exception):
    """Internal: the request provably never left the client; ``error`` says why."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


_NEVER_SENT = (
    ParamValidationError,
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    NoRegionError,
)


def never_sent(error: BaseException) -> bool:
    """Whether ``error`` proves the request never left the client.

    botocore's parameter validation, missing credentials or region (raised before signing),
    and a header value that HTTP cannot carry (aiohttp refuses it with a ``ValueError``
    while writing the request head, before any byte is sent).
    """
    if isinstance(error, _NEVER_SENT):
        return True
    if isinstance(error, HTTPClientError):  # aiobotocore wraps what aiohttp raised
        cause = error.kwargs.get("error")
        return isinstance(cause, ValueError) and "header" in str(cause).lower()
    return type(error) is ValueError and "header" in str(error).lower()


@dataclass(frozen=True, slots=True)
class Submitter:
    """Calls InvokeEndpointAsync with the retry policy.

    Args:
        policy: ``"at-most-once"`` resends only what provably did not start;
            ``"at-least-once"`` also resends what may have been accepted (same inference id
            and Filename, so a duplicate writes the same location).
        retries: Resends at most this many times.
        retry_delay: First backoff delay in seconds (doubles, capped at 2 s).
    """

    policy: SubmitPolicy = "at-most-once"
    retries: int = 3
    retry_delay: float = 0.1

    async def submit(self, call: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """The response of ``call``.

        Raises:
            Uncertain: some attempt may have been accepted and none was answered.
            Refused: rejected, or every attempt provably failed to start.
            NotSent: the request never left the client (invalid, no credentials or region).
        """
        delay = self.retry_delay
        uncertain = False
        attempt = 0
        while True:
            try:
                return await call()
            except (BotoCoreError, ClientError, OSError, ValueError) as error:
                if never_sent(error):
                    if uncertain:  # an earlier attempt may have been accepted
                        raise Uncertain(error) from error
                    raise NotSent(error) from error
                if isinstance(error, ValueError) and not isinstance(error, OSError):
                    raise
                kind = classify_submission(error)
                uncertain = uncertain or kind is SubmitKind.UNCERTAIN
                resend = kind is SubmitKind.NOT_STARTED or (
                    kind is SubmitKind.UNCERTAIN and self.policy == "at-least-once"
                )
                if not resend or attempt >= self.retries:
                    raise (Uncertain(error) if uncertain else Refused(error)) from error
                logger.debug("InvokeEndpointAsync %s (%r); resending", kind.value, error)
                attempt += 1
                await anyio.sleep(delay)
                delay = min(delay * 2, 2.0)


class OutputNaming:
    """Where an endpoint puts results, learned from its accepted requests.

    A request sent with ``Filename`` (and ``S3OutputPathExtension``) is answered with
    locations that contain ``<extension>/<filename>``; what surrounds it is the endpoint's
    naming, the same for every request. Unknown until one request has been accepted.
    """

    def __init__(self) -> None:
        self._output: tuple[str, str] | None = None
        self._failure: tuple[str, str] | None = None
        self.described = False
        """Whether the endpoint config was read for :meth:`assume` (tried once)."""

    def learn(self, key: str, output: str, failure: str | None) -> None:
        """Remember the naming from one accepted request sent with ``key`` (ext/filename)."""
        self._output = _split(output, key)
        self._failure = None if failure is None else _split(failure, key)

    @property
    def known(self) -> bool:
        """Whether a request has taught the naming (or :meth:`assume` was given a base)."""
        return self._output is not None

    def assume(self, output_path: str) -> None:
        """Until a request is answered: results go to ``<output_path>/<key>`` (failures unknown)."""
        if self._output is None:
            self._output = (output_path.rstrip("/") + "/", "")

    def predict(self, key: str) -> tuple[str | None, str | None]:
        """The (output, failure) locations of a request sent with ``key``, where known."""
        if self._output is None:
            return None, None
        output = key.join(self._output)
        return output, None if self._failure is None else key.join(self._failure)


def naming_key(args: dict[str, Any]) -> str | None:
    """``<S3OutputPathExtension>/<Filename>`` of a request, None without a Filename."""
    filename = args.get("Filename")
    if not filename:
        return None
    extension = str(args.get("S3OutputPathExtension") or "").strip("/")
    return f"{extension}/{filename}" if extension else str(filename)


def _split(location: str, key: str) -> tuple[str, str] | None:
    before, found, after = location.rpartition("/" + key)
    if not found or key in before:
        return None
    return before + "/", after
