"""Bounded batches: ``AsyncPredictor.map`` / ``map_ordered`` and their outcomes.

A :class:`BatchRun` reads its inputs lazily (an iterable or an async iterable), keeps at most
``concurrency`` inferences submitted but not yet handed to the caller, and registers every
submitted response with the predictor's waiting engine (no task or poll loop per response).
Outcomes come out in completion order, or in input order with ``ordered=True``; a failure is an
outcome like any other and never stops the batch, unless ``max_failure_ratio`` is set.

With a :class:`RetryPolicy`, a failure matching it is submitted again (a new inference) after a
backoff, and only the last try's outcome is yielded; with ``cleanup``, the input objects the
library uploaded (and, with ``"all"``, the result objects once read) are deleted before the
outcome is yielded. Either makes each input's task live until its final outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sized,
)
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol

import anyio

from ._binding import Watch
from ._config import WaiterConfig, check_positive, check_waiter_config
from ._exceptions import AsyncInferenceModelError, BatchFailureRatioExceeded
from ._optional import import_optional
from ._policies import MIN_FINISHED_FOR_RATIO, RetryPolicy, check_failure_ratio
from ._response import AsyncInferenceResponse
from ._s3 import S3Requests, S3Uri

__all__ = ["BatchOutcome", "BatchProgress", "BatchRun"]

logger = logging.getLogger("aiosagemaker")
Cleanup = Literal["inputs", "all"] | None


class BatchPredictor(Protocol):
    """What a :class:`BatchRun` uses of its predictor (an ``AsyncPredictor``)."""

    async def predict_async(
        self,
        data: Any = None,
        input_path: str | None = None,
        initial_args: Mapping[str, Any] | None = None,
        inference_id: str | None = None,
    ) -> AsyncInferenceResponse:
        """Submit one inference."""

    @property
    def _transport(self) -> S3Requests | None:
        """The open predictor's S3 requests (None when closed): ``cleanup`` deletes with them."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What became of one input of a batch.

    Attributes:
        index: The input's position (0-based).
        response: The submitted response (None when the submission itself failed).
        result: The decoded result (None when ``exception`` is set).
        exception: What went wrong (the model's failure, a timeout, a refused submission);
            with a retry policy, the last try's error.
        attempts: How many tries it took (more than 1 only with a retry policy).
    """

    index: int
    response: AsyncInferenceResponse | None
    result: Any = None
    exception: BaseException | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        """Whether there is a result."""
        return self.exception is None


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Counts handed to a ``progress`` callable after every change."""

    submitted: int
    done: int
    failed: int
    total: int | None


Progress = bool | Callable[[BatchProgress], None]
_END: Any = object()


class _Bar:
    """A tqdm progress bar (``tqdm.auto``: a widget in Jupyter, text in a terminal)."""

    def __init__(self, total: int | None) -> None:
        tqdm_auto = import_optional(
            "tqdm.auto", "pip install 'aiosagemaker[progress]'", "map(..., progress=True)"
        )
        self.bar = tqdm_auto.tqdm(total=total, unit="inference", dynamic_ncols=True)
        self.shown = 0

    def __call__(self, progress: BatchProgress) -> None:
        if progress.total is not None and self.bar.total != progress.total:
            self.bar.total = progress.total
            self.bar.refresh()
        if progress.done > self.shown:
            self.bar.update(progress.done - self.shown)
            self.shown = progress.done
        self.bar.set_postfix(failed=progress.failed, refresh=False)

    def close(self) -> None:
        self.bar.close()


class BatchRun:
    """An async iterator of :class:`BatchOutcome` (also an async context manager).

    Leaving ``async with`` (or ``aclose()``) stops submitting and unregisters what is still
    pending; the inferences already submitted go on at the endpoint.
    """

    def __init__(
        self,
        predictor: BatchPredictor,
        inputs: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int,
        waiter_config: WaiterConfig | None,
        progress: Progress,
        ordered: bool,
        initial_args: Mapping[str, Any] | None,
        submit: Callable[[int, Any], Awaitable[AsyncInferenceResponse]] | None = None,
        retry: RetryPolicy | None = None,
        max_failure_ratio: float | None = None,
        cleanup: Cleanup = None,
        may_retry: Callable[[int, BaseException], bool] | None = None,
        keep_final_results: bool = False,
    ) -> None:
        check_positive("concurrency", concurrency, integer=True)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(
                f"retry must be a RetryPolicy or None, got {type(retry).__name__}; e.g. "
                "retry=RetryPolicy(attempts=3)"
            )
        if cleanup not in (None, "inputs", "all"):
            raise ValueError(f"cleanup must be 'inputs', 'all' or None, got {cleanup!r}")
        self._retry = retry
        self._max_failure_ratio = check_failure_ratio(max_failure_ratio)
        self._cleanup = cleanup
        self._may_retry = may_retry
        self._keep_final_results = keep_final_results  # the caller deletes them (the CLI)
        self._stopped = False
        if not isinstance(inputs, (Iterable, AsyncIterable)):
            raise TypeError(
                f"inputs must be an iterable or an async iterable, got {type(inputs).__name__}"
            )
        check_waiter_config(waiter_config, none="for the predictor's")
        if not (isinstance(progress, bool) or callable(progress)):
            raise TypeError(
                "progress must be True, False or a callable taking BatchProgress, got "
                f"{type(progress).__name__}"
            )
        self._predictor = predictor
        self._inputs = inputs
        self._waiter_config = waiter_config
        self._ordered = ordered
        self._initial_args = initial_args
        self._submit_one = submit or self._predict
        self._slots = anyio.Semaphore(concurrency)
        self._total: int | None = len(inputs) if isinstance(inputs, Sized) else None
        self._bar = _Bar(self._total) if progress is True else None  # may raise: first
        self._send, self._receive = anyio.create_memory_object_stream[Any](math.inf)
        self._progress: Callable[[BatchProgress], None] | None = (
            self._bar if self._bar is not None else progress or None  # type: ignore[assignment]
        )
        self._submitted = self._done = self._failed = self._yielded = 0
        self._buffer: dict[int, BatchOutcome] = {}
        self._watches: dict[int, Watch] = {}
        self._pump: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._closed = False

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[BatchOutcome]:
        return self

    async def __anext__(self) -> BatchOutcome:
        if self._closed:
            raise StopAsyncIteration
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(
                self._run(), name="aiosagemaker-batch"
            )
        while True:
            if self._total is not None and self._yielded >= self._total:
                await self.aclose()
                if self._stopped:
                    raise self._ratio_exceeded()
                raise StopAsyncIteration
            if self._ordered and self._yielded in self._buffer:
                outcome = self._buffer.pop(self._yielded)
                break
            item = await self._receive.receive()
            if item is _END:
                if self._error is not None:
                    error, self._error = self._error, None
                    await self.aclose()
                    raise error
                continue
            if not self._ordered:
                outcome = item
                break
            self._buffer[item.index] = item
        self._yielded += 1
        self._slots.release()
        return outcome

    async def __aenter__(self) -> BatchRun:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop submitting; unregister the responses still pending."""
        if self._closed:
            return
        self._closed = True
        pump, self._pump = self._pump, None
        if pump is not None and not pump.done():
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        for watch in list(self._watches.values()):
            watch.cancel()
        self._watches.clear()
        self._send.close()
        self._receive.close()
        if self._bar is not None:
            self._bar.close()

    # -- the submitting side ----------------------------------------------------------------

    async def _items(self) -> AsyncIterator[Any]:
        inputs = self._inputs
        if isinstance(inputs, AsyncIterable):
            async for item in inputs:
                yield item
                if self._stopped:  # max_failure_ratio: read no further
                    close = getattr(inputs, "aclose", None)
                    if close is not None:
                        await close()
                    return
        else:
            for item in inputs:
                yield item
                if self._stopped:
                    return

    async def _run(self) -> None:
        try:
            count = 0
            async with anyio.create_task_group() as tasks:
                try:
                    async for item in self._items():
                        await self._slots.acquire()
                        if self._stopped:  # max_failure_ratio: not submitted; the inputs end
                            self._slots.release()
                            continue
                        tasks.start_soon(self._submit, count, item)
                        count += 1
                except Exception as error:  # the inputs raised: handed over as it is
                    self._error = error  # once the submissions in flight have finished
                else:
                    self._total = count
                    self._report()
        except Exception as error:
            self._error = error
        finally:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._send.send_nowait(_END)

    async def _predict(self, index: int, data: Any) -> AsyncInferenceResponse:
        return await self._predictor.predict_async(data, initial_args=self._initial_args)

    async def _submit(self, index: int, data: Any) -> None:
        if self._retry is not None or self._cleanup is not None:
            await self._submit_until_final(index, data)
            return
        try:
            response = await self._submit_one(index, data)
        except Exception as error:
            self._emit(BatchOutcome(index, None, exception=error))
            return
        self._submitted += 1
        self._report()

        def settled() -> None:
            self._watches.pop(index, None)
            self._emit(self._outcome_of(index, response))

        watch = await response.watch(self._waiter_config, settled)
        if watch is None:
            settled()
        elif not response.done() and response.exception() is None:
            self._watches[index] = watch

    async def _submit_until_final(self, index: int, data: Any) -> None:
        """Submit, wait, clean up and retry as the policies say; emit the final outcome."""
        tries = 0
        submitted = False
        while True:
            tries += 1
            try:
                response = await self._submit_one(index, data)
            except Exception as refused:
                outcome = BatchOutcome(index, None, exception=refused, attempts=tries)
            else:
                if not submitted:  # counted once per input
                    submitted = True
                    self._submitted += 1
                    self._report()
                outcome = await self._settle(index, response, tries)
            failure = outcome.exception
            final = failure is None or not self._retries(index, failure, tries)
            if self._cleanup is not None:
                await self._clean(outcome, final)
            if final:
                self._emit(outcome)
                return
            assert self._retry is not None
            await anyio.sleep(self._retry.delay(tries))

    def _retries(self, index: int, error: BaseException, tries: int) -> bool:
        if self._retry is None or self._stopped:
            return False
        if self._may_retry is not None and not self._may_retry(index, error):
            return False
        return self._retry.retries(error, tries)

    async def _settle(
        self, index: int, response: AsyncInferenceResponse, tries: int
    ) -> BatchOutcome:
        """Wait (on the engine, not polling) until ``response`` settles; its outcome."""
        settled = anyio.Event()
        watch = await response.watch(self._waiter_config, settled.set)
        if watch is not None and not response.done() and response.exception() is None:
            self._watches[index] = watch
            try:
                await settled.wait()
            finally:
                self._watches.pop(index, None)
                if not settled.is_set():  # cancelled (aclose): stop watching it
                    watch.cancel()
        return self._outcome_of(index, response, tries)

    async def _clean(self, outcome: BatchOutcome, final: bool) -> None:
        """Delete what ``cleanup`` asks for; failures are logged with the location."""
        response = outcome.response
        transport = self._predictor._transport
        if response is None or transport is None:
            return
        doomed = [] if response._uploaded_input is None else [response._uploaded_input]
        if self._cleanup == "all" and not (final and self._keep_final_results):
            doomed += result_objects(outcome)
        for uri in doomed:
            await delete_quietly(transport, uri)

    @staticmethod
    def _outcome_of(index: int, response: AsyncInferenceResponse, tries: int = 1) -> BatchOutcome:
        error = response.exception()
        if error is not None:
            return BatchOutcome(index, response, exception=error, attempts=tries)
        return BatchOutcome(index, response, result=response.result(), attempts=tries)

    def _emit(self, outcome: BatchOutcome) -> None:
        self._done += 1
        if outcome.exception is not None:
            self._failed += 1
        self._check_ratio()
        self._report()
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._send.send_nowait(outcome)

    def _check_ratio(self) -> None:
        """Stop submitting once the failed share of finished inputs passes the limit."""
        limit = self._max_failure_ratio
        if limit is None or self._stopped or self._done < MIN_FINISHED_FOR_RATIO:
            return
        self._stopped = self._failed / self._done > limit

    def _ratio_exceeded(self) -> BatchFailureRatioExceeded:
        """The error ending a batch stopped by ``max_failure_ratio`` (final counts)."""
        assert self._max_failure_ratio is not None
        inputs = self._inputs
        submitted = self._total or 0
        not_submitted = len(inputs) - submitted if isinstance(inputs, Sized) else None
        return BatchFailureRatioExceeded(
            f"{self._failed} of {self._done} finished inputs failed (more than "
            f"max_failure_ratio={self._max_failure_ratio:g} once {MIN_FINISHED_FOR_RATIO} had "
            "finished); the batch stopped submitting"
            + ("" if not_submitted is None else f" and {not_submitted} inputs were not submitted"),
            done=self._done,
            failed=self._failed,
            not_submitted=not_submitted,
            limit=self._max_failure_ratio,
        )

    def _report(self) -> None:
        if self._progress is not None:
            self._progress(BatchProgress(self._submitted, self._done, self._failed, self._total))


def result_objects(outcome: BatchOutcome) -> list[S3Uri]:
    """The result (or failure) object whose content ``outcome`` holds; none if not read."""
    response = outcome.response
    if response is None:
        return []
    if outcome.exception is None:
        return [S3Uri.parse(response.output_path)]
    if isinstance(outcome.exception, AsyncInferenceModelError) and response.failure_path:
        return [S3Uri.parse(response.failure_path)]
    return []


async def delete_quietly(transport: S3Requests, uri: S3Uri) -> None:
    """Delete ``uri``; a failure is logged (with the location), never raised."""
    try:
        await transport.delete(uri)
    except Exception as error:
        logger.warning("cleanup: could not delete %s (it stays): %s", uri, error)
