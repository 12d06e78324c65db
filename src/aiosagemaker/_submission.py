"""Submitting InvokeEndpointAsync at most once (or at least once), and where results will be.

botocore never retries InvokeEndpointAsync (its client has ``total_max_attempts=1``); this
module resends only what provably did not start (:func:`._aws_errors.classify_submission`),
unless the caller chose ``"at-least-once"``. :class:`Invoker` does it for one predictor: it
bounds the requests in flight, sends with the policy, learns the endpoint's result naming
(:class:`._naming.OutputNaming`) and result prefixes from answers, and turns what went wrong
into the library's typed errors.
"""

from __future__ import annotations

import contextlib
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

from . import _management
from ._aws_errors import (
    SubmitKind,
    classify_submission,
    describe_transport,
    error_code,
    error_message,
)
from ._clients import ClientFactory
from ._exceptions import (
    AsyncInferenceError,
    EndpointNotFoundError,
    InvalidRequestError,
    RequestNotSentError,
    SubmissionUncertainError,
    UnexpectedClientError,
)
from ._naming import OutputNaming, naming_key
from ._request_args import check_fields
from ._slots import RequestSlots
from ._tokens import ResultPrefixes

__all__ = [
    "SUBMIT_POLICIES",
    "Invoker",
    "NotSent",
    "Refused",
    "SubmitPolicy",
    "Submitter",
    "Uncertain",
]

logger = logging.getLogger("aiosagemaker")

SubmitPolicy = Literal["at-most-once", "at-least-once"]
Respond = Callable[[str, "str | None", "str | None"], Any]
"""Makes a response handle from (output_path, failure_path, inference_id)."""
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


class Invoker:
    """InvokeEndpointAsync for one predictor: bounded, resent per policy, errors typed.

    Args:
        endpoint_name: The endpoint.
        submitter: The resend policy.
        factory: Makes the control-plane client that reads the endpoint config.
        result_prefixes: The endpoint's result prefixes, learned from answers and its config.
        limit: Most requests in flight (inline bodies wait here, not in the HTTP client).
    """

    def __init__(
        self,
        endpoint_name: str,
        submitter: Submitter,
        factory: ClientFactory,
        result_prefixes: ResultPrefixes,
        limit: int,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.submitter = submitter
        self.naming = OutputNaming()
        self.limiter: RequestSlots | None = None
        """Created on first use (in the running loop), dropped by :meth:`close`."""
        self._factory = factory
        self._result_prefixes = result_prefixes
        self._limit = limit
        self._describe_lock: anyio.Lock | None = None

    def close(self) -> None:
        """Forget the loop-bound limiter (the predictor closed)."""
        self.limiter = None

    async def invoke(self, runtime: Any, args: dict[str, Any], respond: Respond) -> dict[str, Any]:
        """The InvokeEndpointAsync answer for ``args``.

        Raises:
            UnsupportedFeatureError: botocore cannot send a field of ``args``.
            SubmissionUncertainError: maybe accepted, no answer (``respond`` makes its
                response when the result location can be predicted).
            RequestNotSentError: provably never sent.
            EndpointNotFoundError / UnexpectedClientError: refused.
        """
        check_fields(runtime, args)
        if self.limiter is None:
            self.limiter = RequestSlots(self._limit)
        invokes = self.limiter
        # The first attempt's slot is taken here, before the resend machinery below exists:
        # a request queued for its turn holds neither its frames nor its closure (thousands
        # may queue at once).
        await invokes.acquire()
        held = True

        async def call() -> dict[str, Any]:
            nonlocal held
            if not held:  # a resend queues again
                await invokes.acquire()
            held = True
            try:
                answer: dict[str, Any] = await runtime.invoke_endpoint_async(**args)
            finally:
                held = False
                invokes.release()
            return answer

        try:
            answer = await self.submitter.submit(call)
        except Uncertain as uncertain:
            if naming_key(args) is not None:
                await self.read_endpoint_config(self._naming_unread)
            raise self._uncertain(args, uncertain.error, respond) from uncertain.error
        except NotSent as not_sent:
            raise self.not_sent(not_sent.error) from not_sent.error
        except Refused as refused:
            error = refused.error
            if isinstance(error, ParamValidationError):
                raise self.not_sent(error) from error
            raise self._refused(error, runtime.meta.region_name) from error
        finally:
            if held:  # cancelled before the first attempt started
                invokes.release()
        return answer

    def accepted(self, args: dict[str, Any], answer: dict[str, Any]) -> None:
        """Learn the endpoint's result prefixes and naming from an accepted request."""
        output_path, failure_path = answer["OutputLocation"], answer.get("FailureLocation")
        key = naming_key(args)
        if key is not None:
            self.naming.learn(key, output_path, failure_path)
        prefixes = self.naming.prefixes if key is not None else (None, None)
        for location, prefix in zip((output_path, failure_path), prefixes, strict=True):
            if location is not None:
                with contextlib.suppress(ValueError):
                    self._result_prefixes.add(prefix or location.rpartition("/")[0])

    async def read_endpoint_config(self, needed: Callable[[], bool]) -> None:
        """Read the endpoint config, if ``needed()`` (checked before and under the lock)."""
        if not needed():
            return
        self._describe_lock = self._describe_lock or anyio.Lock()
        async with self._describe_lock:  # once, however many ask at once
            if needed():
                await self._learn_output_path()

    def _naming_unread(self) -> bool:
        """Whether the naming is unknown and the endpoint config was not read yet."""
        return not self.naming.known and not self.naming.described

    def not_sent(self, error: BaseException) -> RequestNotSentError:
        """The typed error of a request that provably never left the client."""
        what = f"InvokeEndpointAsync on endpoint {self.endpoint_name!r} was not sent"
        if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
            return RequestNotSentError(
                f"{what}: no AWS credentials were found ({error}). Configure them (environment "
                "variables, ~/.aws/credentials, a role, or session=...)"
            )
        if isinstance(error, CredentialRetrievalError):
            return RequestNotSentError(f"{what}: the AWS credentials could not be loaded ({error})")
        if isinstance(error, NoRegionError):
            return RequestNotSentError(
                f"{what}: no AWS region is configured. Set AWS_DEFAULT_REGION or pass a session "
                "with a region"
            )
        if isinstance(error, ParamValidationError):
            return InvalidRequestError(f"{what}: invalid arguments: {error}")
        return InvalidRequestError(
            f"{what}: an argument sent as an HTTP header cannot be sent ({error}); check "
            "inference_id and initial_args (ContentType, Accept, CustomAttributes, ...) for "
            "newlines or other control characters"
        )

    async def _learn_output_path(self) -> None:
        """Best effort: the endpoint's S3OutputPath from its config (needs two Describe calls).

        Failures are not predicted this way (their naming is learned from answers). Errors
        leave the naming unknown; it is not read again for the naming (tokens may retry).
        """
        self.naming.described = True
        try:
            with anyio.fail_after(10):
                async with self._factory.client("sagemaker") as client:
                    endpoint = await _management.describe_endpoint(client, self.endpoint_name)
                    config = await _management.describe_endpoint_config(
                        client, endpoint["EndpointConfigName"]
                    )
        except (AsyncInferenceError, KeyError, TimeoutError) as error:
            logger.debug("could not read the output path of %s: %r", self.endpoint_name, error)
            return
        paths = config.get("AsyncInferenceConfig", {}).get("OutputConfig", {})
        output_path = paths.get("S3OutputPath")
        if isinstance(output_path, str) and output_path.startswith("s3://"):
            self.naming.assume(output_path)
        for name in ("S3OutputPath", "S3FailurePath"):
            with contextlib.suppress(ValueError):
                self._result_prefixes.add(paths.get(name), what=name)

    def _uncertain(
        self, args: dict[str, Any], error: BaseException, respond: Respond
    ) -> SubmissionUncertainError:
        inference_id = args["InferenceId"]
        key = naming_key(args)
        output_path, failure_path = (None, None) if key is None else self.naming.predict(key)
        if output_path is None:
            where = (
                "its result location is not known (no request of this predictor was answered "
                "yet, or botocore is too old to choose Filename)"
            )
            response = None
        else:
            where = f"its result will be at {output_path}: wait on error.response"
            response = respond(output_path, failure_path, inference_id)
        resent = (
            "Resending it could run it twice, so it was not resent"
            if self.submitter.policy == "at-most-once"
            else f"It was resent {self.submitter.retries} times without an answer"
        )
        return SubmissionUncertainError(
            f"InvokeEndpointAsync on endpoint {self.endpoint_name!r} may or may not have been "
            f"accepted (inference id {inference_id!r}; {type(error).__name__}: {error}). "
            f"{resent}. If it was accepted, {where}",
            response=response,
            output_path=output_path,
            failure_path=failure_path,
            inference_id=inference_id,
        )

    def _refused(self, error: BaseException, region: str) -> AsyncInferenceError:
        what = f"InvokeEndpointAsync on endpoint {self.endpoint_name!r}"
        if not isinstance(error, ClientError):
            return UnexpectedClientError(describe_transport(error, what))
        code = error_code(error) or ""
        message = error_message(error)
        if code == "ValidationError" and "not found" in message.lower():
            return EndpointNotFoundError(
                f"{message} Check the endpoint name {self.endpoint_name!r}, the region "
                f"({region}) and the SageMaker runtime URL "
                "(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME); the endpoint must be InService and "
                "have an AsyncInferenceConfig.",
                code=code,
                endpoint_name=self.endpoint_name,
            )
        return UnexpectedClientError(f"{what} failed with {code}: {message}", code=code)
