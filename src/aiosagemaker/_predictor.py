"""AsyncPredictor: uploads input, calls InvokeEndpointAsync, hands out awaitable responses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Literal

import anyio
from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)

from . import _management
from ._aws_errors import describe_transport, error_code, error_message
from ._background import BackgroundTasks
from ._batch import BatchProgress, BatchRun
from ._callbacks import CallbackRunner
from ._clients import ClientFactory
from ._config import DEFAULT_WAITER_CONFIG, S3Options, WaiterConfig, check_positive
from ._exceptions import (
    AsyncInferenceError,
    EndpointNotFoundError,
    InvalidRequestError,
    InvalidTokenError,
    RequestNotSentError,
    SubmissionUncertainError,
    UnexpectedClientError,
    UnsupportedFeatureError,
)
from ._limits import INLINE_BODY_MAX_BYTES, S3_OUTPUT_PATH_EXTENSION_MAX
from ._notifications import NotificationQueue
from ._policies import RetryPolicy
from ._response import AsyncInferenceResponse, ResponseBinding
from ._s3 import S3Requests, S3Uri, check_bucket, input_key
from ._scaling import timeout_explainer
from ._submission import (
    SUBMIT_POLICIES,
    NotSent,
    OutputNaming,
    Refused,
    SubmitPolicy,
    Submitter,
    Uncertain,
    naming_key,
)
from ._telemetry import Telemetry
from ._tokens import ResultPrefixes, decode_token, token_key
from ._transport import Transport, open_transport
from ._types import Deserializer, Serializer
from ._waiting import DEFAULT_S3_REQUESTS_PER_SECOND, Detection, RequestBudget, WaitingEngine
from ._waiting._detector import NotificationDetector
from .deserializers import BytesDeserializer
from .serializers import IdentitySerializer

__all__ = ["AsyncPredictor"]

logger = logging.getLogger("aiosagemaker")

_NEW_FIELDS = {
    "Body": "1.43.29",
    "Filename": "1.42.54",
    "S3OutputPathExtension": "1.42.54",
}
_UNSET: Any = object()

DEFAULT_MAX_RESULT_BYTES = 256 * 1024 * 1024
"""``get_result`` refuses results larger than this (256 MiB); ``download`` streams any size."""
ROTATE_EVERY = 1000
"""Submissions per output sub-prefix: each listing then pages through at most this many keys."""
_EXTENSION_PATTERN = re.compile(r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_retries(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"transient_retries must be an int (retries per request, 0 for none), got "
            f"{type(value).__name__}: {value!r}"
        )
    if value < 0:
        raise ValueError(f"transient_retries must be >= 0 (0 for no retries), got {value}")
    return value


def _check_prefix(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(
            f"input_prefix must be a string (the key prefix of uploaded inputs; '' for none), "
            f"got {type(value).__name__}"
        )
    if _CONTROL.search(value):
        raise ValueError(f"input_prefix must not contain control characters, got {value!r}")
    return value


_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_HEADER_ARGS = ("ContentType", "Accept", "CustomAttributes")
_HEADER_MAX = 1024


def _check_inference_id(value: object) -> str:
    """The service's rule: 1-64 printable ASCII characters, the first not a space."""
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"inference_id must be a str, got {type(value).__name__}; the request was not sent"
        )
    if not 1 <= len(value) <= 64 or not _PRINTABLE.fullmatch(value) or value[0] == " ":
        raise InvalidRequestError(
            f"inference_id must be 1-64 printable ASCII characters (no newline or other control "
            f"character, not starting with a space), got {value!r}; the request was not sent"
        )
    return value


def _check_headers(args: Mapping[str, Any]) -> None:
    """String arguments sent as HTTP headers: printable ASCII, at most 1024 characters."""
    for name in _HEADER_ARGS:
        value = args.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRequestError(
                f"{name} must be a str (it is sent as an HTTP header), got "
                f"{type(value).__name__}; the request was not sent"
            )
        if len(value) > _HEADER_MAX or not _PRINTABLE.fullmatch(value):
            raise InvalidRequestError(
                f"{name} must be at most {_HEADER_MAX} printable ASCII characters (it is sent as "
                f"an HTTP header: no newline or other control character), got {value[:80]!r}"
                f"{'...' if len(value) > 80 else ''}; the request was not sent"
            )


def _accept_header(accept: str | tuple[str, ...] | list[str]) -> str:
    """A str ACCEPT is sent as it is; a sequence is joined (the SDK joins a str's characters)."""
    return accept if isinstance(accept, str) else ", ".join(accept)


def _to_payload(serialized: Any) -> bytes | Any:
    """Serializer output as bytes, or the readable file object itself."""
    if isinstance(serialized, str):
        return serialized.encode("utf-8")
    if isinstance(serialized, (bytes, bytearray, memoryview)):
        return bytes(serialized)
    if hasattr(serialized, "read"):
        return serialized
    raise TypeError(
        f"the serializer returned {type(serialized).__name__}; it must return bytes, str or a "
        "readable file-like object"
    )


def _extension_base(extension: str | None) -> str | None:
    """The validated per-predictor ``S3OutputPathExtension`` ("auto": a random one)."""
    if extension is None:
        return None
    if extension == "auto":
        return f"aiosagemaker-{secrets.token_hex(4)}"
    if not isinstance(extension, str):
        raise TypeError(
            "output_path_extension must be a string, 'auto' or None, got "
            f"{type(extension).__name__}"
        )
    stripped = extension.strip("/")
    if (
        not stripped
        or len(stripped) > S3_OUTPUT_PATH_EXTENSION_MAX - 16
        or not _EXTENSION_PATTERN.match(stripped)
    ):
        raise ValueError(
            f"output_path_extension must be 1-{S3_OUTPUT_PATH_EXTENSION_MAX - 16} characters of "
            f"letters, digits and !_.*'()/- (not starting with s3: or https:), got {extension!r}; "
            "pass None to send none"
        )
    return stripped


class AsyncPredictor:
    """Client for one SageMaker async endpoint, on the running event loop.

    Args:
        endpoint_name: The endpoint to invoke.
        session: An ``aioboto3.Session`` or an aiobotocore ``AioSession``; default: a new
            aiobotocore session with the standard credential, region and endpoint-URL chain.
        serializer: Turns ``data`` into the uploaded payload (SDK serializers work).
        deserializer: Decodes the result (SDK deserializers work).
        default_bucket: Bucket for uploaded inputs; default ``sagemaker-{region}-{account}``.
        input_prefix: Key prefix for uploaded inputs.
        client_config: A botocore/aiobotocore ``Config`` merged over the library's defaults.
        waiter_config: What ``await response`` and ``predict`` wait with by default.
        inline: Send payloads of at most 128,000 bytes in the request instead of uploading
            them: "auto" (default: inline when botocore supports ``Body``, >= 1.43.29, and
            the payload fits; else uploaded), True (always inline), or False (always upload,
            as the SDK does; the input is then kept in S3).
        create_default_bucket: Create the default bucket when it does not exist.
        max_concurrency: Most S3 requests in flight at once, and most InvokeEndpointAsync
            requests in flight at once (others wait their turn, their payloads not yet sent);
            also the connection pool size unless ``client_config`` sets one (default: the
            pool size, 64).
        transient_retries: Retries of one S3 request on throttling, 5xx or connection errors.
        failure_check_every: Poll the failure location only every n-th attempt (and on the
            last): fewer S3 requests when failures are rare, failures seen up to n - 1 poll
            intervals later. Default 1: every attempt, concurrently with the output.
        notifications: An SQS queue subscribed to the endpoint's SuccessTopic and ErrorTopic:
            responses complete when their notification arrives, with a slow S3 poll as the
            safety net, instead of by polling S3.
        max_result_bytes: ``get_result`` refuses a larger result before reading it (raising
            ``ResultTooLargeError``; ``download`` streams any size). None: no limit.
        s3_requests_per_second: Ceiling of the S3 requests the waiting engine makes to find
            results (LIST pages and probing GETs); halved on SlowDown, regained gradually.
        detection: How results are found: ``"auto"`` (per group of pending results, one
            LIST of their prefix or one GET each, whichever costs less), ``"list"`` or
            ``"get"``.
        output_path_extension: ``S3OutputPathExtension`` sent with every request (botocore
            >= 1.42.54), so this predictor's results sit under their own prefix and its
            listings see only them: ``"auto"`` (``aiosagemaker-<8 hex>``, skipped on an older
            botocore), a string of your own, or None for none. A sub-prefix is added per
            1,000 submissions (``<extension>/<n>``).
        telemetry: Record OpenTelemetry spans and counters when ``opentelemetry-api`` is
            installed (``pip install 'aiosagemaker[otel]'``); never payloads or results.
        submit_retries: ``"at-most-once"`` (default): InvokeEndpointAsync is resent only
            when it provably did not start (connect error, throttling, ServiceUnavailable);
            a request that may have been accepted raises ``SubmissionUncertainError``.
            ``"at-least-once"``: resend that too (a duplicate inference rather than a gap).
            Resends at most ``transient_retries`` times.
        upload_extra_args: Extra S3 arguments for every input upload, single-part and
            multipart (``ServerSideEncryption``, ``SSEKMSKeyId``, ``Tagging``, ...).
        expected_bucket_owner: Account id sent as ``ExpectedBucketOwner`` on every S3
            request of the predictor (uploads, checks, results, multipart parts).
        result_prefixes: ``s3://bucket/prefix`` locations where unsigned continuation tokens
            may point (besides the endpoint's own result prefixes, learned or read from its
            config); see :meth:`response_from_token`.
        transport: Advanced: where requests go (a ``Transport`` of S3 requests and a
            SageMaker runtime client, opened and closed by the caller), as httpx takes a
            transport; tests pass an in-memory one. Default: aiobotocore clients made from
            ``session`` and ``client_config`` when the predictor opens.

    Example:
        >>> async with AsyncPredictor("my-endpoint", serializer=JSONSerializer(),
        ...                           deserializer=JSONDeserializer()) as predictor:
        ...     result = await predictor.predict({"inputs": [1, 2, 3]})
    """

    def __init__(
        self,
        endpoint_name: str,
        *,
        session: Any = None,
        serializer: Serializer = IdentitySerializer(),  # noqa: B008 - immutable default
        deserializer: Deserializer = BytesDeserializer(),  # noqa: B008 - immutable default
        default_bucket: str | None = None,
        input_prefix: str = "async-endpoint-inputs",
        client_config: Any = None,
        waiter_config: WaiterConfig = DEFAULT_WAITER_CONFIG,
        inline: bool | Literal["auto"] = "auto",
        create_default_bucket: bool = False,
        max_concurrency: int | None = None,
        transient_retries: int = 3,
        notifications: NotificationQueue | None = None,
        failure_check_every: int = 1,
        max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES,
        s3_requests_per_second: float = DEFAULT_S3_REQUESTS_PER_SECOND,
        detection: Detection = "auto",
        output_path_extension: str | None = "auto",
        telemetry: bool = True,
        submit_retries: SubmitPolicy = "at-most-once",
        upload_extra_args: Mapping[str, Any] | None = None,
        expected_bucket_owner: str | None = None,
        result_prefixes: Iterable[str] | None = None,
        transport: Transport | None = None,
    ) -> None:
        if not isinstance(endpoint_name, str) or not endpoint_name:
            raise ValueError(f"endpoint_name must be a non-empty string, got {endpoint_name!r}")
        if not isinstance(serializer, Serializer):
            raise TypeError(
                "serializer must have CONTENT_TYPE and serialize(data), got "
                f"{type(serializer).__name__}"
            )
        if not isinstance(deserializer, Deserializer):
            raise TypeError(
                "deserializer must have ACCEPT and deserialize(stream, content_type), got "
                f"{type(deserializer).__name__}"
            )
        if not isinstance(waiter_config, WaiterConfig):
            raise TypeError(
                f"waiter_config must be a WaiterConfig, got {type(waiter_config).__name__}"
            )
        if inline not in (True, False, "auto"):
            raise ValueError(f"inline must be True, False or 'auto', got {inline!r}")
        if max_concurrency is not None:
            check_positive("max_concurrency", max_concurrency, integer=True)
        check_positive("failure_check_every", failure_check_every, integer=True)
        if max_result_bytes is not None:
            check_positive("max_result_bytes", max_result_bytes, integer=True)
        check_positive("s3_requests_per_second", s3_requests_per_second)
        if detection not in ("auto", "list", "get"):
            raise ValueError(f"detection must be 'auto', 'list' or 'get', got {detection!r}")
        self._extension = _extension_base(output_path_extension)
        self._extension_explicit = output_path_extension not in (None, "auto")
        if submit_retries not in SUBMIT_POLICIES:
            raise ValueError(
                f"submit_retries must be 'at-most-once' or 'at-least-once', got {submit_retries!r}"
            )
        if default_bucket is not None:
            check_bucket(default_bucket, "default_bucket")
        self._s3_options = S3Options(upload_extra_args or {}, expected_bucket_owner)
        if notifications is not None and not isinstance(notifications, NotificationQueue):
            raise TypeError(
                "notifications must be an aiosagemaker.NotificationQueue or None, got "
                f"{type(notifications).__name__}"
            )
        self.endpoint_name = endpoint_name
        self.serializer = serializer
        self.deserializer = deserializer
        self.default_bucket = default_bucket
        self.input_prefix = _check_prefix(input_prefix)
        self.waiter_config = waiter_config
        self.inline = inline
        self.create_default_bucket = create_default_bucket
        self.notifications = notifications
        self._factory = ClientFactory(session, client_config, max_pool_connections=max_concurrency)
        self._max_concurrency = max_concurrency
        self._transient_retries = _check_retries(transient_retries)
        self._submitter = Submitter(submit_retries, self._transient_retries)
        self._naming = OutputNaming()
        self._describe_lock: anyio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure_check_every = failure_check_every
        self._requests_per_second = float(s3_requests_per_second)
        self._detection: Detection = detection
        self._submitted = 0
        self._stack: AsyncExitStack | None = None
        self._open_lock: anyio.Lock | None = None
        self._runtime: Any = None
        self._transport: S3Requests | None = None
        self._invokes: anyio.CapacityLimiter | None = None
        self._engine: WaitingEngine | None = None
        self._bucket_lock: anyio.Lock | None = None
        self.max_result_bytes = max_result_bytes
        self._telemetry = Telemetry(enabled=bool(telemetry))
        self._callbacks = CallbackRunner()
        self._result_prefixes = ResultPrefixes()
        for prefix in result_prefixes or ():
            self._result_prefixes.add(prefix, what="result_prefixes entry")
        if transport is not None and not isinstance(transport, Transport):
            raise TypeError(
                "transport must be an aiosagemaker Transport or None, got "
                f"{type(transport).__name__}"
            )
        self._given_transport = transport

    def __repr__(self) -> str:
        return f"<AsyncPredictor endpoint_name={self.endpoint_name!r}>"

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> AsyncPredictor:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the clients and their connection pools. The predictor can be reopened.

        Every wait still pending ends at once with :class:`PredictorClosedError` (the
        inferences go on at the endpoint; wait on their responses again after reopening),
        done callbacks run, and async ones are awaited.
        """
        await self._callbacks.cancel_watches()
        stack, self._stack = self._stack, None
        self._runtime = self._transport = self._engine = None
        self._invokes = None
        if stack is not None:
            await stack.aclose()
        await self._callbacks.aclose()

    async def _open(self) -> None:
        """Create the shared clients once, inside the running event loop."""
        if self._stack is not None:
            self._check_loop()
            return
        if self._open_lock is None:
            self._open_lock = anyio.Lock()
        async with self._open_lock:
            if self._stack is not None:
                return
            async with AsyncExitStack() as stack:
                budget = RequestBudget(self._requests_per_second)
                transport = self._given_transport or await open_transport(
                    self._factory,
                    stack,
                    limit=self._max_concurrency or self._factory.max_pool_connections,
                    max_retries=self._transient_retries,
                    on_throttle=budget.throttled,
                    on_request=self._telemetry.s3_request if self._telemetry.enabled else None,
                    options=self._s3_options,
                )
                self._transport = transport.s3
                detector = None
                if self.notifications is not None:
                    sqs = await stack.enter_async_context(self._factory.client("sqs"))
                    detector = NotificationDetector(self.notifications, sqs)
                background = await stack.enter_async_context(BackgroundTasks())
                engine = WaitingEngine(
                    self._transport,
                    budget,
                    detection=self._detection,
                    failure_every=self._failure_check_every,
                    detector=detector,
                    start_soon=background.start_soon,
                )
                stack.push_async_callback(engine.aclose)  # the engine stops before the clients
                engine.start()
                self._engine = engine
                self._runtime = transport.runtime
                self._loop = asyncio.get_running_loop()
                self._stack = stack.pop_all()

    def _check_loop(self) -> None:
        """Refuse to use clients that belong to another (usually closed) event loop."""
        if self._loop is asyncio.get_running_loop():
            return
        state = "closed" if self._loop is not None and self._loop.is_closed() else "different"
        raise RuntimeError(
            f"this AsyncPredictor was opened in another event loop (now {state}); its clients "
            "and connections belong to that loop. Create the predictor (or `async with` it) "
            "inside the loop that uses it, or `await predictor.close()` before its loop ends"
        )

    async def _waiting_engine(self) -> WaitingEngine:
        await self._open()
        assert self._engine is not None
        return self._engine

    @property
    def response_binding(self) -> ResponseBinding:
        """What this predictor's responses use: its engine, deserializer and defaults."""
        return ResponseBinding(
            engine=self._waiting_engine,
            deserializer=self.deserializer,
            waiter_config=self.waiter_config,
            endpoint_name=self.endpoint_name,
            max_result_bytes=self.max_result_bytes,
            telemetry=self._telemetry,
            explain_timeout=timeout_explainer(self._factory, self.endpoint_name),
            callbacks=self._callbacks,
        )

    @property
    def engine_stats(self) -> Any:
        """What the waiting engine did since the predictor was opened (None when closed)."""
        return None if self._engine is None else self._engine.stats

    # -- requests ------------------------------------------------------------------------

    async def predict_async(
        self,
        data: Any = None,
        input_path: str | None = None,
        initial_args: Mapping[str, Any] | None = None,
        inference_id: str | None = None,
    ) -> AsyncInferenceResponse:
        """Submit one inference; return its response handle without waiting for the result.

        Exactly one of ``data`` (serialized, then uploaded or sent inline) and ``input_path``
        (an existing ``s3://`` object) is required; with both, ``data`` is uploaded to
        exactly ``input_path`` (as the SDK does).

        Raises:
            ValueError / TypeError: bad arguments (the message says which and how to fix).
            EndpointNotFoundError: the endpoint does not exist in this region/account.
            UnexpectedClientError: S3 or SageMaker refused the request.
            UnsupportedFeatureError: the installed botocore lacks a requested field.
            SubmissionUncertainError: the request may have been accepted but its answer was
                lost; it carries the inference id and, where known, the result's location.
            RequestNotSentError: the request provably never left the client (no credentials
                or region; ``InvalidRequestError``, also a ``ValueError``: an invalid
                ``inference_id`` or argument). Never uncertain.
        """
        if data is None and input_path is None:
            raise ValueError(
                "Please provide input data or input Amazon S3 location to use async prediction: "
                "pass data=<payload> or input_path='s3://bucket/key'"
            )
        target = None if input_path is None else S3Uri.parse(input_path, what="input_path")
        args = self._request_args(initial_args, inference_id or str(uuid.uuid4()))
        with self._telemetry.span("submit", endpoint=self.endpoint_name) as span:
            response = await self._submit(data, target, args)
            if span is not None:
                span.set_attribute("aiosagemaker.inference_id", response.inference_id or "")
                span.set_attribute("aiosagemaker.output_path", response.output_path)
        self._telemetry.count("inferences.submitted", endpoint=self.endpoint_name)
        return response

    async def _submit(
        self, data: Any, target: S3Uri | None, args: dict[str, Any]
    ) -> AsyncInferenceResponse:
        try:
            await self._open()
        except (NoRegionError, NoCredentialsError, PartialCredentialsError) as error:
            raise self._not_sent(error) from error
        assert self._transport is not None
        uploaded = None  # an input object the library chose and wrote (map's cleanup)
        if data is not None:
            payload = _to_payload(self.serializer.serialize(data))
            if target is None and self._send_inline(payload):
                args["Body"] = payload
            else:
                if target is None:
                    target = uploaded = S3Uri(
                        await self._bucket(), input_key(self.input_prefix, self.endpoint_name)
                    )
                await self._transport.put(target, payload, self.serializer.CONTENT_TYPE)
        if target is not None:
            args["InputLocation"] = str(target)
        self._add_extension(args)
        self._add_filename(args)
        response = await self._invoke(args)
        logger.debug("invoked %s: %s", self.endpoint_name, response.get("InferenceId"))
        self._learn_prefixes(response["OutputLocation"], response.get("FailureLocation"))
        key = naming_key(args)
        if key is not None:
            self._naming.learn(key, response["OutputLocation"], response.get("FailureLocation"))
        handle = AsyncInferenceResponse(
            self,
            response["OutputLocation"],
            response.get("FailureLocation"),
            response.get("InferenceId") or args["InferenceId"],
        )
        handle._uploaded_input = uploaded
        return handle

    async def predict(
        self,
        data: Any = None,
        input_path: str | None = None,
        initial_args: Mapping[str, Any] | None = None,
        inference_id: str | None = None,
        waiter_config: WaiterConfig = _UNSET,
    ) -> Any:
        """Submit one inference and wait for its decoded result (``predict_async`` + wait)."""
        waiter_config = self.waiter_config if waiter_config is _UNSET else waiter_config
        if waiter_config is None:
            waiter_config = self.waiter_config
        if not isinstance(waiter_config, WaiterConfig):
            raise ValueError(
                f"waiter_config should be a WaiterConfig object, got {type(waiter_config).__name__}"
            )
        response = await self.predict_async(data, input_path, initial_args, inference_id)
        return await response.get_result(waiter_config)

    def map(
        self,
        inputs: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int = 64,
        waiter_config: WaiterConfig | None = None,
        progress: bool | Callable[[BatchProgress], None] = False,
        initial_args: Mapping[str, Any] | None = None,
        ordered: bool = False,
        retry: RetryPolicy | None = None,
        max_failure_ratio: float | None = None,
        cleanup: Literal["inputs", "all"] | None = None,
    ) -> BatchRun:
        """Run every input through the endpoint; yield a :class:`BatchOutcome` for each.

        Outcomes come in completion order (``ordered=True`` or :meth:`map_ordered`: input
        order); each carries ``index``, ``response``, ``result`` and ``exception``, and a
        failure never stops the batch. At most ``concurrency`` inferences are submitted and
        not yet handed to you, so memory stays flat on any input size; ``inputs`` (an
        iterable or an async iterable) is read lazily. Waits use ``waiter_config`` (default:
        the predictor's) on the predictor's waiting engine.

        Args:
            inputs: The payloads (each one is ``data`` for :meth:`predict_async`).
            concurrency: Most inferences in flight (submitted, outcome not yet yielded).
            waiter_config: How long each inference may take.
            progress: True for a tqdm bar (``pip install 'aiosagemaker[progress]'``), or a
                callable receiving :class:`BatchProgress` counts; default nothing.
            initial_args: InvokeEndpointAsync arguments for every request.
            ordered: Yield in input order (buffering at most ``concurrency`` outcomes).
            retry: Submit failed inputs again as a :class:`RetryPolicy` says (each try a new
                inference; ``outcome.attempts`` counts them, the error is the last try's).
            max_failure_ratio: Stop submitting once more than this share of the finished
                inputs failed (checked from 20 finished on); what is in flight finishes and
                is yielded, then :class:`BatchFailureRatioExceeded` is raised.
            cleanup: ``"inputs"``: delete each input object the library uploaded once its
                outcome is known; ``"all"``: also the result or failure object once it has
                been read into the outcome (needs ``s3:DeleteObject``; failures are logged).

        Example:
            >>> async with predictor.map(rows, concurrency=100, progress=True) as outcomes:
            ...     async for outcome in outcomes:
            ...         print(outcome.index, outcome.exception or outcome.result)
        """
        return BatchRun(
            self,
            inputs,
            concurrency=concurrency,
            waiter_config=waiter_config,
            progress=progress,
            ordered=ordered,
            initial_args=initial_args,
            retry=retry,
            max_failure_ratio=max_failure_ratio,
            cleanup=cleanup,
        )

    def map_ordered(
        self,
        inputs: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int = 64,
        waiter_config: WaiterConfig | None = None,
        progress: bool | Callable[[BatchProgress], None] = False,
        initial_args: Mapping[str, Any] | None = None,
    ) -> BatchRun:
        """:meth:`map`, yielding outcomes in input order."""
        return self.map(
            inputs,
            concurrency=concurrency,
            waiter_config=waiter_config,
            progress=progress,
            initial_args=initial_args,
            ordered=True,
        )

    def response_from_token(
        self, token: str, key: str | bytes | None = None, *, allow_foreign: bool = False
    ) -> AsyncInferenceResponse:
        """Rebuild a response from ``AsyncInferenceResponse.continuation_token()``.

        With a key (``key=`` or ``AIOSAGEMAKER_TOKEN_KEY``) only tokens signed with it are
        accepted. A token for another endpoint is refused. An unsigned token is accepted only
        when both its locations lie inside the endpoint's result prefixes: those given as
        ``result_prefixes=``, seen in this predictor's answers, or read from the endpoint
        config (``S3OutputPath``/``S3FailurePath``, read before the response's first S3
        request when nothing else is known yet; then the refusal comes from that request).
        ``allow_foreign=True`` skips both checks.

        Raises:
            InvalidTokenError: (a ``ValueError``) the token is malformed, too large, altered,
                unsigned where a key is set, or names another endpoint or result location.
        """
        state, signed = decode_token(token, token_key(key))
        if state["endpoint_name"] != self.endpoint_name and not allow_foreign:
            raise InvalidTokenError(
                f"the token belongs to endpoint {state['endpoint_name']!r}, not "
                f"{self.endpoint_name!r}; use a predictor for that endpoint"
            )
        try:
            response = AsyncInferenceResponse(
                self, state["output_path"], state.get("failure_path"), state.get("inference_id")
            )
        except ValueError as error:
            raise InvalidTokenError(f"the continuation token is not usable: {error}") from error
        if signed or allow_foreign:
            return response
        locations = [state["output_path"], state.get("failure_path")]
        if self._result_prefixes:
            self._check_token_locations(locations)
        else:  # decided once the endpoint config was read, before any S3 request
            response._admit = lambda: self._admit_token(locations)
        return response

    async def _admit_token(self, locations: list[str | None]) -> None:
        """Read the endpoint's result prefixes (once), then check an unsigned token's locations."""
        if not self._result_prefixes:
            self._describe_lock = self._describe_lock or anyio.Lock()
            async with self._describe_lock:
                if not self._result_prefixes:
                    await self._learn_output_path()
        self._check_token_locations(locations)

    def _check_token_locations(self, locations: list[str | None]) -> None:
        if not self._result_prefixes:
            raise InvalidTokenError(
                f"an unsigned continuation token cannot be checked: the result locations of "
                f"endpoint {self.endpoint_name!r} are not known (its config could not be read: "
                "sagemaker:DescribeEndpoint and DescribeEndpointConfig). Sign tokens "
                "(continuation_token(key=...)), pass AsyncPredictor(result_prefixes=[...]), or "
                "pass allow_foreign=True if you trust where the token came from"
            )
        for location in filter(None, locations):
            uri = S3Uri.parse(location)
            reason = self._result_prefixes.refusal(uri.bucket, uri.key)
            if reason is not None:
                raise InvalidTokenError(
                    f"the unsigned token points at {location}, but {reason}; sign tokens "
                    "(continuation_token(key=...)), or pass allow_foreign=True if you trust "
                    "where it came from"
                )

    def _learn_prefixes(self, output: str, failure: str | None) -> None:
        """Remember the endpoint's result prefixes (everything before our extension)."""
        for location in filter(None, (output, failure)):
            self._result_prefixes.learn(location, self._extension)

    # -- helpers -------------------------------------------------------------------------

    def _request_args(
        self, initial_args: Mapping[str, Any] | None, inference_id: str | None
    ) -> dict[str, Any]:
        if initial_args is not None and not isinstance(initial_args, Mapping):
            raise TypeError(
                f"initial_args must be a dict of InvokeEndpointAsync arguments, got "
                f"{type(initial_args).__name__}"
            )
        args = dict(initial_args or {})
        for key in ("InputLocation", "Body"):
            if key in args:
                raise ValueError(
                    f"initial_args[{key!r}] is not used: pass the payload as data= or its S3 "
                    "location as input_path="
                )
        args.setdefault("EndpointName", self.endpoint_name)
        args.setdefault("ContentType", self.serializer.CONTENT_TYPE)
        args.setdefault("Accept", _accept_header(self.deserializer.ACCEPT))
        if inference_id is not None:
            args["InferenceId"] = _check_inference_id(inference_id)
        _check_headers(args)
        return args

    def _add_extension(self, args: dict[str, Any]) -> None:
        """Send this predictor's rotating ``S3OutputPathExtension`` (unless the caller set one)."""
        if self._extension is None or "S3OutputPathExtension" in args:
            return
        if not self._supports("S3OutputPathExtension"):
            if self._extension_explicit:
                raise UnsupportedFeatureError(self._too_old("S3OutputPathExtension"))
            return
        generation = self._submitted // ROTATE_EVERY
        self._submitted += 1
        args["S3OutputPathExtension"] = f"{self._extension}/{generation:x}"

    def _add_filename(self, args: dict[str, Any]) -> None:
        """Choose the result's ``Filename``, so a lost answer still tells where it will be."""
        if "Filename" not in args and self._supports("Filename"):
            args["Filename"] = f"{uuid.uuid4().hex[:24]}.out"  # at most 32 characters

    def _supports(self, field: str) -> bool:
        model = self._runtime.meta.service_model.operation_model("InvokeEndpointAsync")
        return field in model.input_shape.members

    def _send_inline(self, payload: Any) -> bool:
        if self.inline is False:
            return False
        fits = isinstance(payload, bytes) and len(payload) <= INLINE_BODY_MAX_BYTES
        if self.inline == "auto":
            return fits and self._supports("Body")
        if not self._supports("Body"):
            raise UnsupportedFeatureError(self._too_old("Body"))
        if not fits:
            size = f"{len(payload)} bytes" if isinstance(payload, bytes) else "a file object"
            raise ValueError(
                f"inline=True but the payload is {size}; InvokeEndpointAsync takes at most "
                f"{INLINE_BODY_MAX_BYTES} bytes inline. Use inline='auto' to upload larger "
                "payloads to S3 instead"
            )
        return True

    def _too_old(self, field: str) -> str:
        import botocore

        return (
            f"InvokeEndpointAsync field {field!r} needs botocore >= {_NEW_FIELDS[field]}, but "
            f"botocore {botocore.__version__} is installed (aioboto3 15.x pins it). Install "
            "aiobotocore >= 3 (pip install -U 'aiobotocore>=3'), or leave the field out"
        )

    async def _invoke(self, args: dict[str, Any]) -> dict[str, Any]:
        for field in _NEW_FIELDS:
            if field in args and not self._supports(field):
                raise UnsupportedFeatureError(self._too_old(field))
        runtime = self._runtime
        invokes = self._invoke_limiter()

        async def call() -> dict[str, Any]:
            async with invokes:
                response: dict[str, Any] = await runtime.invoke_endpoint_async(**args)
            return response

        try:
            return await self._submitter.submit(call)
        except Uncertain as uncertain:
            if not self._naming.known and naming_key(args) is not None:
                self._describe_lock = self._describe_lock or anyio.Lock()
                async with self._describe_lock:  # once, however many are uncertain at once
                    if not self._naming.known and not self._naming.described:
                        self._naming.described = True
                        await self._learn_output_path()
            raise self._uncertain(args, uncertain.error) from uncertain.error
        except NotSent as not_sent:
            raise self._not_sent(not_sent.error) from not_sent.error
        except Refused as refused:
            error = refused.error
            if isinstance(error, ParamValidationError):
                raise self._not_sent(error) from error
            raise self._invoke_error(error) from error

    def _invoke_limiter(self) -> anyio.CapacityLimiter:
        """Bounds InvokeEndpointAsync requests in flight to ``max_concurrency`` (default: the
        pool size): inline bodies then wait here, not all at once inside the HTTP client."""
        if self._invokes is None:
            limit = self._max_concurrency or self._factory.max_pool_connections
            self._invokes = anyio.CapacityLimiter(limit)
        return self._invokes

    def _not_sent(self, error: BaseException) -> RequestNotSentError:
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

        Only before any request of this predictor was answered; failures are not predicted
        this way (their naming is learned from answers). Errors leave the naming unknown.
        """
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
        output = paths.get("S3OutputPath")
        if isinstance(output, str) and output.startswith("s3://"):
            self._naming.assume(output)
        for name in ("S3OutputPath", "S3FailurePath"):
            with contextlib.suppress(ValueError):
                self._result_prefixes.add(paths.get(name), what=name)

    def _uncertain(self, args: dict[str, Any], error: BaseException) -> SubmissionUncertainError:
        inference_id = args["InferenceId"]
        key = naming_key(args)
        output, failure = (None, None) if key is None else self._naming.predict(key)
        if output is None:
            where = (
                "its result location is not known (no request of this predictor was answered "
                "yet, or botocore is too old to choose Filename)"
            )
            response = None
        else:
            where = f"its result will be at {output}: wait on error.response"
            response = AsyncInferenceResponse(self, output, failure, inference_id)
        resent = (
            "Resending it could run it twice, so it was not resent"
            if self._submitter.policy == "at-most-once"
            else f"It was resent {self._submitter.retries} times without an answer"
        )
        return SubmissionUncertainError(
            f"InvokeEndpointAsync on endpoint {self.endpoint_name!r} may or may not have been "
            f"accepted (inference id {inference_id!r}; {type(error).__name__}: {error}). "
            f"{resent}. If it was accepted, {where}",
            response=response,
            output_path=output,
            failure_path=failure,
            inference_id=inference_id,
        )

    def _invoke_error(self, error: BaseException) -> AsyncInferenceError:
        if not isinstance(error, ClientError):
            what = f"InvokeEndpointAsync on endpoint {self.endpoint_name!r}"
            return UnexpectedClientError(describe_transport(error, what))
        code = error_code(error) or ""
        message = error_message(error)
        if code == "ValidationError" and "not found" in message.lower():
            return EndpointNotFoundError(
                f"{message} Check the endpoint name {self.endpoint_name!r}, the region "
                f"({self._runtime.meta.region_name}) and the SageMaker runtime URL "
                "(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME); the endpoint must be InService and "
                "have an AsyncInferenceConfig.",
                code=code,
                endpoint_name=self.endpoint_name,
            )
        return UnexpectedClientError(
            f"InvokeEndpointAsync on endpoint {self.endpoint_name!r} failed with {code}: {message}",
            code=code,
        )

    async def _bucket(self) -> str:
        if self.default_bucket is not None:
            return self.default_bucket
        if self._bucket_lock is None:
            self._bucket_lock = anyio.Lock()
        async with self._bucket_lock:
            if self.default_bucket is None:
                assert self._transport is not None
                self.default_bucket = await self._factory.default_bucket(
                    self._transport.client, create=self.create_default_bucket
                )
        return self.default_bucket

    # -- endpoint management (SDK Predictor pass-throughs; a control-plane client per call) --

    async def describe_endpoint(self) -> dict[str, Any]:
        """The ``DescribeEndpoint`` response of this endpoint (not in the SDK)."""
        async with self._factory.client("sagemaker") as client:
            return await _management.describe_endpoint(client, self.endpoint_name)

    async def update_endpoint(
        self,
        initial_instance_count: int | None = None,
        instance_type: str | None = None,
        accelerator_type: str | None = None,
        model_name: str | None = None,
        tags: _management.Tags | None = None,
        kms_key: str | None = None,
        data_capture_config_dict: Mapping[str, Any] | None = None,
        wait: bool = True,
    ) -> None:
        """Switch the endpoint to a new endpoint config derived from its current one.

        As ``sagemaker.Predictor.update_endpoint``: the given values replace the current ones
        (any of count, type, accelerator or model replaces the ProductionVariants); with
        ``wait``, polls until the endpoint is InService again.

        Raises:
            ValueError: instance type/count missing, or several models and no ``model_name``.
            UnexpectedClientError: SageMaker refused, or the endpoint failed or rolled back.
        """
        async with self._factory.client("sagemaker") as client:
            await _management.update_endpoint(
                client,
                self.endpoint_name,
                initial_instance_count=initial_instance_count,
                instance_type=instance_type,
                accelerator_type=accelerator_type,
                model_name=model_name,
                tags=tags,
                kms_key=kms_key,
                data_capture_config_dict=data_capture_config_dict,
                wait=wait,
            )

    async def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """Delete the endpoint (and first its endpoint config, unless told not to)."""
        async with self._factory.client("sagemaker") as client:
            await _management.delete_endpoint(client, self.endpoint_name, delete_endpoint_config)

    async def delete_model(self) -> None:
        """Delete the models of the endpoint's config (call before ``delete_endpoint``)."""
        async with self._factory.client("sagemaker") as client:
            await _management.delete_model(client, self.endpoint_name)

    async def enable_data_capture(self) -> None:
        """Turn data capture on (default destination ``s3://<bucket>/model-monitor/...``)."""
        async with self._factory.client("sagemaker") as client:
            await _management.set_data_capture(
                client, self.endpoint_name, True, self._capture_bucket
            )

    async def disable_data_capture(self) -> None:
        """Turn data capture off, keeping the rest of the endpoint's DataCaptureConfig."""
        async with self._factory.client("sagemaker") as client:
            await _management.set_data_capture(
                client, self.endpoint_name, False, self._capture_bucket
            )

    async def update_data_capture_config(self, data_capture_config: Any) -> None:
        """Use this DataCaptureConfig (a request dict or an SDK ``DataCaptureConfig``)."""
        async with self._factory.client("sagemaker") as client:
            await _management.update_data_capture_config(
                client, self.endpoint_name, data_capture_config
            )

    async def list_monitors(self) -> list[dict[str, Any]]:
        """The endpoint's monitoring schedule summaries, as dicts (the SDK returns monitors)."""
        async with self._factory.client("sagemaker") as client:
            return await _management.list_monitors(client, self.endpoint_name)

    async def endpoint_context(self) -> dict[str, Any] | None:
        """The endpoint's lineage context summary (ListContexts by its ARN), or None."""
        async with self._factory.client("sagemaker") as client:
            return await _management.endpoint_context(client, self.endpoint_name)

    async def _capture_bucket(self) -> str:
        await self._open()
        return await self._bucket()
