"""AsyncInferenceResponse: the awaitable handle to one submitted inference."""

from __future__ import annotations

import asyncio
import enum
import html
import io
import os
import uuid
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from typing import Any, TypeVar

import anyio

from . import deserializers
from ._binding import BindingSource, ResponseBinding, Watch
from ._callbacks import DoneCallbacks
from ._config import WaiterConfig, check_waiter_config
from ._download import check_target, file_writer
from ._exceptions import (
    AsyncInferenceModelError,
    ObjectNotExistedError,
    PollingTimeoutError,
    PredictorClosedError,
    ResultDeserializationError,
)
from ._s3 import Consume, Fetched, S3Uri, read_all
from ._telemetry import Telemetry
from ._tokens import encode_token, token_key
from ._waiting import Completed, Outcome, ResultLocations

__all__ = ["AsyncInferenceResponse", "InferenceStatus", "ResponseBinding", "Watch"]

T = TypeVar("T")
_UNSET: Any = object()
_NO_TELEMETRY = Telemetry(enabled=False)


class InferenceStatus(str, enum.Enum):
    """What this handle knows so far (no request is made to find out)."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"

    def __str__(self) -> str:
        return self.value


class AsyncInferenceResponse:
    """Handle to an inference submitted with ``predict_async``.

    ``await response`` waits with the predictor's WaiterConfig; ``get_result()`` with no
    argument makes a single check (the SDK's semantics). A result is fetched once and cached;
    a model failure is remembered too. Cancelling a wait only unregisters it from the
    predictor's waiting engine: the inference goes on and the response can be awaited again.

    Args:
        predictor_async: The predictor (or a :class:`ResponseBinding`).
        output_path: The OutputLocation.
        failure_path: The FailureLocation, if the endpoint has one.
        inference_id: The inference id.

    Example:
        >>> response = await predictor.predict_async(data=b"...")
        >>> result = await response.get_result(WaiterConfig(max_attempts=120, delay=1))
    """

    def __init__(
        self,
        predictor_async: BindingSource | ResponseBinding,
        output_path: str,
        failure_path: str | None,
        inference_id: str | None = None,
    ) -> None:
        self.predictor_async = predictor_async
        self._binding = (
            predictor_async
            if isinstance(predictor_async, ResponseBinding)
            else predictor_async.response_binding
        )
        self.output_path = output_path
        self.failure_path = failure_path
        self.inference_id = inference_id
        self._locations = ResultLocations(
            output=S3Uri.parse(output_path, what="OutputLocation"),
            failure=None
            if failure_path is None
            else S3Uri.parse(failure_path, what="FailureLocation"),
            inference_id=inference_id,
        )
        self._result: Any = _UNSET
        self._failure: str | None = None
        self._uploaded_input: S3Uri | None = None  # set by the predictor (map's cleanup)
        self._error: BaseException | None = None
        self._admit: Callable[[], Awaitable[None]] | None = None
        """Set by ``response_from_token``: a check to pass before the first S3 request."""
        self._callbacks = DoneCallbacks(self._binding.callbacks)

    def __repr__(self) -> str:
        return (
            f"<AsyncInferenceResponse {self.status.value} inference_id={self.inference_id!r} "
            f"output_path={self.output_path!r}>"
        )

    @property
    def status(self) -> InferenceStatus:
        """IN_PROGRESS until a wait has seen the result or the failure."""
        if self._result is not _UNSET:
            return InferenceStatus.COMPLETED
        if self._failure is not None:
            return InferenceStatus.FAILED
        return InferenceStatus.IN_PROGRESS

    def done(self) -> bool:
        """Whether a result or a failure has been seen (no request is made)."""
        return self.status is not InferenceStatus.IN_PROGRESS

    def exception(self) -> BaseException | None:
        """The error the last wait ended with (the model failure included), or None."""
        if self._failure is not None:
            return self._failure_error()
        return None if self._result is not _UNSET else self._error

    def result(self) -> Any:
        """The cached result, without waiting: raises the failure, or the last wait's error.

        Raises:
            AsyncInferenceModelError: the model failed.
            RuntimeError: no wait has ended yet (``await`` the response first).
        """
        if self._result is not _UNSET:
            return self._result
        error = self.exception()
        if error is not None:
            raise error
        raise RuntimeError(
            f"the result of {self.output_path} is not known yet; await the response (or "
            "get_result(WaiterConfig(...))) first"
        )

    def add_done_callback(self, fn: Callable[[AsyncInferenceResponse], Any]) -> None:
        """Call ``fn(response)`` once, when this response settles; ``fn`` may be async.

        Adding a callback makes the predictor's waiting engine watch the response (with the
        predictor's WaiterConfig; no task per response while it waits). It settles with its
        result or its model failure (from any wait), with the error that watch ends with
        (timeout, AWS error), or with :class:`PredictorClosedError` when the predictor is
        closed first; ``fn`` then reads ``result()`` / ``exception()``. Callbacks run soon
        after, in tasks on the predictor's loop (at once when already settled); async ones
        are awaited by ``close()`` (cancelled after a grace period). An exception raised by
        ``fn`` is logged on the ``aiosagemaker`` logger and goes nowhere else.
        """
        if not callable(fn):
            raise TypeError(f"add_done_callback takes a callable, got {type(fn).__name__}")
        if self._callbacks.add(fn, self):
            self._callbacks.runner().watch(self._watch_for_callbacks())

    async def watch(
        self, waiter_config: WaiterConfig | None, on_settled: Callable[[], None]
    ) -> Watch | None:
        """Register this response with its predictor's waiting engine, without a task.

        ``on_settled()`` is called once (on the event loop, not awaited) when the response
        settles: with its result or model failure (read them with ``result()`` /
        ``exception()``), or with the error the watch ends with (``waiter_config`` ran out,
        an AWS error); a cancelled watch never calls it. What ``as_completed``, ``wait`` and
        ``map`` build on.

        Args:
            waiter_config: How long to watch (None: the predictor's WaiterConfig).
            on_settled: Called once the response has settled.

        Returns:
            A :class:`Watch` (``cancel()`` stops watching; the inference goes on), or None
            when the response is done already (``on_settled`` is then not called).
        """
        if self.done():
            return None
        await self._admitted()
        engine = await self._binding.engine()
        if engine.listener is not None:
            await engine._start_listener()

        entry = engine.watch(
            self._locations,
            waiter_config or self._binding.waiter_config,
            read_all,
            max_bytes=self._binding.max_result_bytes,
            on_done=_Settle(self, on_settled),
        )
        return Watch(engine, entry)

    def __await__(self) -> Generator[Any, None, Any]:
        return self.get_result(self._binding.waiter_config).__await__()

    async def get_result(self, waiter_config: WaiterConfig | None = None) -> Any:
        """Return the decoded result.

        Args:
            waiter_config: How long to wait; None makes one check without waiting.

        Raises:
            ObjectNotExistedError: single check, no result yet.
            PollingTimeoutError: the WaiterConfig ran out.
            AsyncInferenceModelError: the endpoint wrote a failure file.
            ResultDeserializationError: the result could not be decoded (it stays in S3).
            ResultTooLargeError: the result is over ``max_result_bytes`` (use ``download``).
            UnexpectedClientError: an AWS error waiting cannot fix (access denied, ...).
        """
        check_waiter_config(waiter_config, none="for a single check")
        if self._result is not _UNSET:
            return self._result
        self._raise_if_failed()
        try:
            fetched = await self._wait(waiter_config, read_all, self._binding.max_result_bytes)
            return await self._keep_async(fetched)
        except Exception as error:
            self._error = error
            raise

    async def download(
        self,
        path: str | os.PathLike[str],
        waiter_config: WaiterConfig | None = None,
        *,
        chunk_size: int = 1024 * 1024,
    ) -> str:
        """Stream the result object to ``path`` with bounded memory; return its ContentType.

        For results too large to hold in memory: the deserializer is not used and
        ``max_result_bytes`` does not apply. The body goes to a temporary file next to
        ``path``, renamed to ``path`` once complete, so a failed or cancelled download
        leaves no partial file. Waits like :meth:`get_result`; a model failure raises
        :class:`AsyncInferenceModelError`.

        Raises:
            FileNotFoundError / NotADirectoryError / IsADirectoryError / PermissionError:
                ``path`` cannot be written (checked before waiting).
        """
        check_waiter_config(waiter_config, none="for a single check")
        self._raise_if_failed()
        target = Path(path)
        await anyio.to_thread.run_sync(check_target, target)  # before waiting, not after
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
        try:
            fetched = await self._wait(waiter_config, file_writer(partial, chunk_size), None)
            await anyio.Path(partial).replace(target)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.Path(partial).unlink(missing_ok=True)
        return fetched.content_type

    def continuation_token(self, key: str | bytes | None = None) -> str:
        """An opaque string that rebuilds this handle with ``AsyncPredictor.response_from_token``.

        It holds the endpoint name, both S3 locations and the inference id (no credentials).
        With a key (``key=`` or the ``AIOSAGEMAKER_TOKEN_KEY`` environment variable) it is
        signed with HMAC-SHA256, so that a predictor holding the same key can tell it was not
        altered. Hand unsigned tokens only to code you trust: an edited one can point at any
        S3 object the reader may read.
        """
        state = {
            "endpoint_name": self._binding.endpoint_name,
            "output_path": self.output_path,
            "failure_path": self.failure_path,
            "inference_id": self.inference_id,
        }
        return encode_token(state, token_key(key))

    def __str__(self) -> str:
        return (
            f"{self.status} inference {self.inference_id or '(no id)'}: output "
            f"{self.output_path}, failure {self.failure_path or '(none)'}"
        )

    def _repr_html_(self) -> str:
        """How Jupyter shows a response: its status, inference id and locations."""
        rows = [
            ("status", str(self.status)),
            ("inference id", self.inference_id or "(no id)"),
            ("output", self.output_path),
            ("failure", self.failure_path or "(none)"),
        ]
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
            f"<td><code>{html.escape(value)}</code></td></tr>"
            for name, value in rows
        )
        return f"<table><caption>AsyncInferenceResponse</caption>{cells}</table>"

    # -- internals ---------------------------------------------------------------------------

    async def _wait(
        self, waiter_config: WaiterConfig | None, consume: Consume[T], max_bytes: int | None
    ) -> Fetched[T]:
        await self._admitted()
        engine = await self._binding.engine()
        with self._telemetry().span(
            "wait",
            endpoint=self._binding.endpoint_name,
            inference_id=self.inference_id,
            output_path=self.output_path,
        ):
            try:
                if waiter_config is None:
                    outcome = await engine.check_once(self._locations, consume, max_bytes=max_bytes)
                else:
                    outcome = await engine.wait(
                        self._locations, waiter_config, consume, max_bytes=max_bytes
                    )
                fetched = self._unwrap(outcome)
            except Exception as error:
                if isinstance(error, PollingTimeoutError) and self._binding.explain_timeout:
                    await self._binding.explain_timeout(error)  # e.g. scaled to zero
                self._count_outcome(error)
                raise
            self._count_outcome(None)
            return fetched

    async def _admitted(self) -> None:
        """Run the token check of a rebuilt response (raises InvalidTokenError) once it passes."""
        if self._admit is not None:
            await self._admit()
            self._admit = None

    def _telemetry(self) -> Telemetry:
        return self._binding.telemetry or _NO_TELEMETRY

    def _count_outcome(self, error: BaseException | None) -> None:
        endpoint = self._binding.endpoint_name
        if error is None:
            self._telemetry().count("inferences.completed", endpoint=endpoint)
        elif isinstance(error, PollingTimeoutError):
            self._telemetry().count("inferences.timed_out", endpoint=endpoint)
        elif not isinstance(error, ObjectNotExistedError):
            self._telemetry().count("inferences.failed", endpoint=endpoint)

    def _unwrap(self, outcome: Outcome[T]) -> Fetched[T]:
        if isinstance(outcome, Completed):
            return outcome.fetched
        self._failure = outcome.message
        self._settle()
        raise self._failure_error()

    def _keep(self, fetched: Fetched[bytes]) -> Any:
        result = self._decode(fetched.value, fetched.content_type)
        self._result = result
        self._error = None
        self._settle()
        return result

    async def _keep_async(self, fetched: Fetched[bytes]) -> Any:
        """:meth:`_keep`, decoding in a worker thread above ``OFF_LOOP_BYTES``."""
        if _decodes_on_loop(fetched):
            return self._keep(fetched)
        result = await anyio.to_thread.run_sync(self._decode, fetched.value, fetched.content_type)
        if self._result is _UNSET:  # another wait of this response may have finished first
            self._result = result
            self._error = None
            self._settle()
        return self._result

    async def _watch_for_callbacks(self) -> None:
        """Register the watch that settles this response for its callbacks."""
        try:
            watch = await self.watch(None, self._settle)
        except asyncio.CancelledError:  # the predictor closed before the watch was set up
            self._error = PredictorClosedError(
                "the predictor was closed before this response settled",
                **self._locations.context(),
            )
            self._settle()
            raise
        except Exception as error:
            self._error = error
            self._settle()
            return
        if watch is None or self._callbacks.settled:
            self._settle()
            if watch is not None:
                watch.cancel()
        else:
            self._callbacks.watch = watch

    def _settle(self) -> None:
        """The response settled: run its done callbacks (once) and stop their watch."""
        self._callbacks.settle(self)

    def _failure_error(self) -> AsyncInferenceModelError:
        assert self._failure is not None
        return AsyncInferenceModelError(self._failure, **self._locations.context())

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure_error()

    def _decode(self, body: bytes, content_type: str) -> Any:
        deserializer = self._binding.deserializer
        try:
            return deserializer.deserialize(io.BytesIO(body), content_type)
        except Exception as error:
            raise ResultDeserializationError(
                f"{type(error).__name__}: {error}",
                content_type=content_type,
                deserializer=type(deserializer).__name__,
                **self._locations.context(),
            ) from error


class _Settle:
    """A watch's ``on_done``: keep the outcome on the response, then call ``on_settled``.

    One small object per watch (no closures): 100,000 watches pending stay cheap.
    """

    __slots__ = ("on_settled", "response")

    def __init__(self, response: AsyncInferenceResponse, on_settled: Callable[[], None]) -> None:
        self.response = response
        self.on_settled = on_settled

    def __call__(
        self, outcome: Outcome[bytes] | None, error: BaseException | None
    ) -> Awaitable[None] | None:
        response = self.response
        if isinstance(outcome, Completed) and not _decodes_on_loop(outcome.fetched):
            return self._decode_then_settle(outcome.fetched)  # in a worker thread
        try:
            if error is not None:
                response._error = error
            elif outcome is not None:
                response._keep(response._unwrap(outcome))
        except Exception as failure:
            response._error = failure
        response._count_outcome(response.exception())
        self.on_settled()
        return None

    async def _decode_then_settle(self, fetched: Fetched[bytes]) -> None:
        response = self.response
        try:
            await response._keep_async(fetched)
        except Exception as failure:
            response._error = failure
        response._count_outcome(response.exception())
        self.on_settled()


def _decodes_on_loop(fetched: Fetched[bytes]) -> bool:
    """Whether a result is small enough to decode on the event loop (CPU work)."""
    return len(fetched.value) <= deserializers.OFF_LOOP_BYTES
