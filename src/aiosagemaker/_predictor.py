"""AsyncPredictor: uploads input, calls InvokeEndpointAsync, hands out awaitable responses.

Longer than the library's other modules for one reason: it is the public face, so the SDK's
method names, signatures and docstrings live here; each method body is a few lines that
delegate (submission to ``_submission``/``_request_args``, management to ``_management``,
batches to ``_batch``, waiting to ``_waiting``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Literal

import anyio
from botocore.exceptions import NoCredentialsError, NoRegionError, PartialCredentialsError

from . import _management
from ._background import BackgroundTasks
from ._batch import BatchProgress, BatchRun
from ._binding import ResponseBinding
from ._callbacks import CallbackRunner
from ._clients import ClientFactory
from ._config import DEFAULT_WAITER_CONFIG, S3Options, WaiterConfig, check_waiter_config
from ._exceptions import InvalidTokenError
from ._notifications import NotificationQueue
from ._policies import RetryPolicy
from ._request_args import RequestArgs, send_inline, supports, to_payload
from ._response import AsyncInferenceResponse
from ._s3 import S3Requests, S3Uri, check_bucket, input_key
from ._scaling import timeout_explainer
from ._submission import SUBMIT_POLICIES, Invoker, SubmitPolicy, Submitter
from ._telemetry import Telemetry
from ._tokens import ResultPrefixes, decode_token, token_key
from ._transport import Transport, TransportName, open_transport, transport_choice
from ._types import Deserializer, Serializer
from ._validation import check_options, check_prefix, check_retries
from ._waiting import DEFAULT_S3_REQUESTS_PER_SECOND, Detection, RequestBudget, WaitingEngine
from ._waiting._detector import NotificationDetector
from .deserializers import BytesDeserializer
from .serializers import IdentitySerializer

__all__ = ["AsyncPredictor"]

logger = logging.getLogger("aiosagemaker")

_UNSET: Any = object()

DEFAULT_MAX_RESULT_BYTES = 256 * 1024 * 1024
"""``get_result`` refuses results larger than this (256 MiB); ``download`` streams any size."""


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
            transport; tests pass an in-memory one. Or the name of a built-in one, made from
            ``session`` and ``client_config`` when the predictor opens: ``"botocore"``
            (every request through aiobotocore) or ``"lean"`` (uploads of bytes, result
            reads, listings and InvokeEndpointAsync on aiohttp, signed with botocore's
            SigV4; the rest through aiobotocore). Default: the environment variable
            ``AIOSAGEMAKER_TRANSPORT``, else ``"lean"``.

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
        transport: Transport | TransportName | None = None,
    ) -> None:
        check_options(
            endpoint_name,
            serializer,
            deserializer,
            inline=inline,
            max_concurrency=max_concurrency,
            failure_check_every=failure_check_every,
            max_result_bytes=max_result_bytes,
            s3_requests_per_second=s3_requests_per_second,
            detection=detection,
            notifications=notifications,
        )
        check_waiter_config(waiter_config)
        self._request_args = RequestArgs(output_path_extension)
        if submit_retries not in SUBMIT_POLICIES:
            raise ValueError(
                f"submit_retries must be 'at-most-once' or 'at-least-once', got {submit_retries!r}"
            )
        if default_bucket is not None:
            check_bucket(default_bucket, "default_bucket")
        self._s3_options = S3Options(upload_extra_args or {}, expected_bucket_owner)
        self.endpoint_name = endpoint_name
        self.serializer = serializer
        self.deserializer = deserializer
        self.default_bucket = default_bucket
        self.input_prefix = check_prefix(input_prefix)
        self.waiter_config = waiter_config
        self.inline = inline
        self.create_default_bucket = create_default_bucket
        self.notifications = notifications
        self._factory = ClientFactory(session, client_config, max_pool_connections=max_concurrency)
        self._max_concurrency = max_concurrency
        self._transient_retries = check_retries(transient_retries)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure_check_every = failure_check_every
        self._requests_per_second = float(s3_requests_per_second)
        self._detection: Detection = detection
        self._stack: AsyncExitStack | None = None
        self._open_lock: anyio.Lock | None = None
        self._runtime: Any = None
        self._transport: S3Requests | None = None
        self._engine: WaitingEngine | None = None
        self._bucket_lock: anyio.Lock | None = None
        self.max_result_bytes = max_result_bytes
        self._telemetry = Telemetry(enabled=bool(telemetry))
        self._callbacks = CallbackRunner()
        self._result_prefixes = ResultPrefixes()
        for prefix in result_prefixes or ():
            self._result_prefixes.add(prefix, what="result_prefixes entry")
        self._manage = _management.EndpointManager(self._factory, endpoint_name)
        self._invoker = Invoker(
            endpoint_name,
            Submitter(submit_retries, self._transient_retries),
            self._factory,
            self._result_prefixes,
            limit=max_concurrency or self._factory.max_pool_connections,
        )
        self._given_transport = transport_choice(transport)
        self._shared_binding: ResponseBinding | None = None

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
        self._invoker.close()
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
                given = self._given_transport
                transport = (
                    given
                    if isinstance(given, Transport)
                    else await open_transport(
                        self._factory,
                        stack,
                        limit=self._max_concurrency or self._factory.max_pool_connections,
                        max_retries=self._transient_retries,
                        on_throttle=budget.throttled,
                        on_request=self._telemetry.s3_request if self._telemetry.enabled else None,
                        options=self._s3_options,
                        name=given,
                    )
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
        """What this predictor's responses use: its engine, deserializer and defaults.

        One binding is shared by the responses made while these attributes stay the same
        (10,000 responses pending do not each hold a copy); a new one once any changes.
        """
        binding = self._shared_binding
        if (
            binding is None
            or binding.deserializer is not self.deserializer
            or binding.waiter_config is not self.waiter_config
            or binding.endpoint_name != self.endpoint_name
            or binding.max_result_bytes != self.max_result_bytes
        ):
            binding = self._shared_binding = ResponseBinding(
                engine=self._waiting_engine,
                deserializer=self.deserializer,
                waiter_config=self.waiter_config,
                endpoint_name=self.endpoint_name,
                max_result_bytes=self.max_result_bytes,
                telemetry=self._telemetry,
                explain_timeout=timeout_explainer(self._factory, self.endpoint_name),
                callbacks=self._callbacks,
            )
        return binding

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
        args = RequestArgs.build(
            initial_args,
            inference_id or str(uuid.uuid4()),
            endpoint_name=self.endpoint_name,
            content_type=self.serializer.CONTENT_TYPE,
            accept=self.deserializer.ACCEPT,
        )
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
            raise self._invoker.not_sent(error) from error
        assert self._transport is not None
        uploaded = None  # an input object the library chose and wrote (map's cleanup)
        if data is not None:
            payload = to_payload(self.serializer.serialize(data))
            if target is None and send_inline(self.inline, payload, self._runtime):
                args["Body"] = payload
            else:
                if target is None:
                    target = uploaded = S3Uri(
                        await self._bucket(), input_key(self.input_prefix, self.endpoint_name)
                    )
                await self._transport.put(target, payload, self.serializer.CONTENT_TYPE)
        if target is not None:
            args["InputLocation"] = str(target)
        self._request_args.name_output(args, self._runtime)
        answer = await self._invoker.invoke(self._runtime, args, self._response)
        logger.debug("invoked %s: %s", self.endpoint_name, answer.get("InferenceId"))
        self._invoker.accepted(args, answer)
        handle = self._response(
            answer["OutputLocation"],
            answer.get("FailureLocation"),
            answer.get("InferenceId") or args["InferenceId"],
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
        check_waiter_config(waiter_config)
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
            self._result_prefixes.check_unsigned(locations, self.endpoint_name)
        else:  # decided once the endpoint config was read, before any S3 request
            response._admit = lambda: self._admit_token(locations)
        return response

    async def _admit_token(self, locations: list[str | None]) -> None:
        """Read the endpoint's result prefixes (once), then check an unsigned token's locations."""
        await self._invoker.read_endpoint_config(lambda: not self._result_prefixes)
        self._result_prefixes.check_unsigned(locations, self.endpoint_name)

    # -- helpers -------------------------------------------------------------------------

    def _response(
        self, output_path: str, failure_path: str | None, inference_id: str | None
    ) -> AsyncInferenceResponse:
        return AsyncInferenceResponse(self, output_path, failure_path, inference_id)

    def _supports(self, field: str) -> bool:
        """Whether the installed botocore can send InvokeEndpointAsync's ``field``."""
        return supports(self._runtime, field)

    async def _bucket(self) -> str:
        """The bucket of uploaded inputs (and of data capture): ``sagemaker-{region}-{account}``
        unless ``default_bucket`` was given; the predictor opens if needed."""
        if self.default_bucket is not None:
            return self.default_bucket
        await self._open()
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
        return await self._manage(_management.describe_endpoint)

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
        await self._manage(
            _management.update_endpoint,
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
        await self._manage(_management.delete_endpoint, delete_endpoint_config)

    async def delete_model(self) -> None:
        """Delete the models of the endpoint's config (call before ``delete_endpoint``)."""
        await self._manage(_management.delete_model)

    async def enable_data_capture(self) -> None:
        """Turn data capture on (default destination ``s3://<bucket>/model-monitor/...``)."""
        await self._manage(_management.set_data_capture, True, self._bucket)

    async def disable_data_capture(self) -> None:
        """Turn data capture off, keeping the rest of the endpoint's DataCaptureConfig."""
        await self._manage(_management.set_data_capture, False, self._bucket)

    async def update_data_capture_config(self, data_capture_config: Any) -> None:
        """Use this DataCaptureConfig (a request dict or an SDK ``DataCaptureConfig``)."""
        await self._manage(_management.update_data_capture_config, data_capture_config)

    async def list_monitors(self) -> list[dict[str, Any]]:
        """The endpoint's monitoring schedule summaries, as dicts (the SDK returns monitors)."""
        return await self._manage(_management.list_monitors)

    async def endpoint_context(self) -> dict[str, Any] | None:
        """The endpoint's lineage context summary (ListContexts by its ARN), or None."""
        return await self._manage(_management.endpoint_context)
