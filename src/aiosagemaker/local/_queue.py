"""One endpoint's FIFO queue: concurrency cap, RequestTTLSeconds, InvocationTimeoutSeconds.

``max_concurrency`` workers take invocations in arrival order; with no instances (scaled to
zero) there are none, and invocations wait until :meth:`EndpointQueue.scale` adds some. A
request still queued when its (time-scaled) TTL runs out is expired at once; a model call that
outlives its (time-scaled) invocation timeout is abandoned and expired. Every outcome writes its
S3 object and publishes its notification before the invocation counts as finished.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ._aws import AwsClients, InputNotFound
from ._faults import FaultState
from ._models import Model, ModelError, ModelInput, ModelOutput
from ._notify import build_message
from ._request import InvocationRequest
from ._spec import ERROR_NOTIFICATION_TOPIC, SUCCESS_NOTIFICATION_TOPIC, ResolvedEndpoint

logger = logging.getLogger("aiosagemaker.local")


@dataclass(frozen=True)
class EndpointStats:
    """Counters of one endpoint (a snapshot).

    ``accepted`` = ``completed + failed + expired`` + those still queued or in flight.
    ``expired`` counts both RequestTTLSeconds and InvocationTimeoutSeconds expiries; ``failed``
    counts model errors and unreadable inputs. ``max_in_flight`` is the highest number of
    invocations observed running at once.
    """

    accepted: int = 0
    completed: int = 0
    failed: int = 0
    expired: int = 0
    queued: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    rejected_unavailable: int = 0
    rejected_internal: int = 0


@dataclass
class Invocation:
    """An accepted invocation on its way through the queue."""

    request: InvocationRequest
    inference_id: str
    output_location: str
    failure_location: str | None
    received: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    state: str = "queued"
    ttl_handle: asyncio.TimerHandle | None = None


class Tracker:
    """Counters of all endpoints behind one lock; signals when nothing is pending."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self._stats: dict[str, EndpointStats] = {}
        self._pending = 0

    def add_endpoint(self, name: str) -> None:
        with self.condition:
            self._stats.setdefault(name, EndpointStats())

    def stats(self, name: str) -> EndpointStats:
        with self.condition:
            return self._stats[name]

    def update(self, name: str, pending: int = 0, **deltas: int) -> None:
        """Add ``deltas`` to the counters of ``name`` (and ``pending`` to the global count)."""
        with self.condition:
            current = self._stats[name]
            values = {key: getattr(current, key) + delta for key, delta in deltas.items()}
            if "in_flight" in values:
                values["max_in_flight"] = max(current.max_in_flight, values["in_flight"])
            self._stats[name] = EndpointStats(**{**current.__dict__, **values})
            self._pending += pending
            self.condition.notify_all()

    def abandon(self) -> None:
        """Forget queued and in-flight work (the emulator stopped); wakes all waiters."""
        with self.condition:
            for name, stats in self._stats.items():
                self._stats[name] = EndpointStats(**{**stats.__dict__, "queued": 0, "in_flight": 0})
            self._pending = 0
            self.condition.notify_all()

    def wait_for(
        self, name: str, predicate: Callable[[EndpointStats], bool], timeout: float
    ) -> bool:
        """Block until ``predicate(stats(name))`` holds; ``False`` on timeout."""
        with self.condition:
            return self.condition.wait_for(lambda: predicate(self._stats[name]), timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued, in flight or being written; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.condition.wait(remaining)
            return True


class EndpointQueue:
    """Queue and workers of one endpoint; runs on the emulator's event loop."""

    def __init__(
        self,
        endpoint: ResolvedEndpoint,
        model: Model,
        aws: AwsClients,
        faults: FaultState,
        tracker: Tracker,
        time_scale: float,
    ) -> None:
        self.endpoint = endpoint
        self._model = model
        self._aws = aws
        self._faults = faults
        self._tracker = tracker
        self._time_scale = time_scale
        self._queue: asyncio.Queue[Invocation] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._handles: set[asyncio.TimerHandle] = set()
        self._live: dict[int, Invocation] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._idle: set[int] = set()
        tracker.add_endpoint(endpoint.name)

    def start(self) -> None:
        """Start one worker per concurrency slot."""
        self.scale(self.endpoint.instance_count)

    def scale(self, instance_count: int) -> None:
        """Run ``instance_count`` instances' worth of workers (0: nothing runs, work queues).

        Missing workers start at once; a surplus worker that is idle stops at once (no
        invocation is lost: it held none), a busy one after its current invocation.
        """
        self.endpoint = dataclasses.replace(self.endpoint, instance_count=instance_count)
        target = self.endpoint.max_concurrency
        for index in range(target):
            if index not in self._workers:
                self._workers[index] = self._spawn(self._worker(index))
        for index in [i for i in self._idle if i >= target]:
            self._workers.pop(index).cancel()

    async def stop(self) -> None:
        """Cancel workers and pending work (queued invocations are dropped)."""
        for handle in self._handles:
            handle.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._model.close()

    def pending(self) -> list[Invocation]:
        """Invocations accepted and not finished (queued or running), oldest first."""
        return sorted(self._live.values(), key=lambda item: item.received)

    def submit(self, item: Invocation, *, restored: bool = False) -> None:
        """Enqueue an accepted invocation and arm its TTL.

        ``restored``: the invocation was accepted before a restart; its TTL counts from its
        original arrival, and it is queued again even if it had started running.
        """
        item.state = "queued"
        self._live[id(item)] = item
        self._tracker.update(self.endpoint.name, pending=1, accepted=1, queued=1)
        ttl = item.request.request_ttl_seconds * self._time_scale
        if restored:
            waited = (datetime.now(timezone.utc) - item.received).total_seconds()
            ttl = max(0.0, ttl - waited)
        loop = asyncio.get_running_loop()
        item.ttl_handle = loop.call_later(ttl, self._expire_queued, item)
        self._handles.add(item.ttl_handle)
        self._queue.put_nowait(item)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _expire_queued(self, item: Invocation) -> None:
        if item.ttl_handle is not None:
            self._handles.discard(item.ttl_handle)
        if item.state != "queued":
            return
        item.state = "expired"
        self._tracker.update(self.endpoint.name, queued=-1)
        reason = (
            "Request expired: it waited in the queue longer than RequestTTLSeconds "
            f"({item.request.request_ttl_seconds} s)."
        )
        self._spawn(self._finish_failure(item, reason, "expired"))

    async def _worker(self, index: int) -> None:
        try:
            while index < self.endpoint.max_concurrency:
                self._idle.add(index)
                try:
                    item = await self._queue.get()
                finally:
                    self._idle.discard(index)
                await self._run(item)
        finally:
            if self._workers.get(index) is asyncio.current_task():
                del self._workers[index]

    async def _run(self, item: Invocation) -> None:
        """Run one invocation taken from the queue (unless it expired meanwhile)."""
        if item.state != "queued":
            return
        item.state = "running"
        if item.ttl_handle is not None:
            item.ttl_handle.cancel()
            self._handles.discard(item.ttl_handle)
        self._tracker.update(self.endpoint.name, queued=-1, in_flight=1)
        try:
            await self._process(item)
        except asyncio.CancelledError:
            raise
        except Exception:  # never let a worker die
            logger.exception("unexpected error processing %s", item.inference_id)
            await self._finish_failure(item, "InternalFailure: emulator error.", "failed")
        finally:
            self._tracker.update(self.endpoint.name, in_flight=-1)

    async def _process(self, item: Invocation) -> None:
        request = item.request
        body = request.body
        if body is None:
            assert request.input_location is not None
            try:
                body = await self._aws.read_input(request.input_location)
            except InputNotFound as exc:
                reason = (
                    f"ClientError: Failed to download the input data from "
                    f"{request.input_location}: the object does not exist or is not "
                    f"accessible ({exc})."
                )
                await self._finish_failure(item, reason, "failed")
                return
        model_input = ModelInput(
            body=body,
            content_type=request.content_type,
            accept=request.accept,
            custom_attributes=request.custom_attributes,
            inference_id=item.inference_id,
        )
        timeout = request.invocation_timeout_seconds * self._time_scale
        try:
            output = await asyncio.wait_for(self._call_model(model_input), timeout)
        except asyncio.TimeoutError:
            reason = (
                "Request expired: the model did not respond within InvocationTimeoutSeconds "
                f"({request.invocation_timeout_seconds} s)."
            )
            await self._finish_failure(item, reason, "expired")
            return
        except ModelError as exc:
            await self._finish_failure(item, exc.reason, "failed")
            return
        await self._finish_success(item, output)

    async def _call_model(self, model_input: ModelInput) -> ModelOutput:
        latency = self._faults.model_latency()
        if latency > 0:
            await asyncio.sleep(latency)
        return await self._model.invoke(model_input)

    async def _finish_success(self, item: Invocation, output: ModelOutput) -> None:
        endpoint = self.endpoint
        try:
            await self._aws.put_object(item.output_location, output.body, output.content_type)
        except Exception as exc:
            logger.exception("cannot write output %s", item.output_location)
            await self._finish_failure(
                item, f"InternalFailure: cannot write output ({exc}).", "failed"
            )
            return
        if endpoint.success_topic_arn:
            include = SUCCESS_NOTIFICATION_TOPIC in endpoint.include_inference_response_in
            await self._publish(
                endpoint.success_topic_arn,
                self._message(
                    item,
                    succeeded=True,
                    output_location=item.output_location,
                    output_content_type=output.content_type,
                    response=output.body if include else None,
                ),
            )
        logger.info(
            "endpoint=%s inference=%s status=Completed output=%s",
            endpoint.name,
            item.inference_id,
            item.output_location,
        )
        self._live.pop(id(item), None)
        self._tracker.update(endpoint.name, pending=-1, completed=1)

    async def _finish_failure(self, item: Invocation, reason: str, outcome: str) -> None:
        endpoint = self.endpoint
        if item.failure_location is not None:
            try:
                await self._aws.put_object(
                    item.failure_location, reason.encode(), "text/plain; charset=utf-8"
                )
            except Exception:
                logger.exception("cannot write failure %s", item.failure_location)
        if endpoint.error_topic_arn:
            include = ERROR_NOTIFICATION_TOPIC in endpoint.include_inference_response_in
            await self._publish(
                endpoint.error_topic_arn,
                self._message(
                    item,
                    succeeded=False,
                    failure_location=item.failure_location,
                    failure_reason=reason,
                    response=reason.encode() if include else None,
                ),
            )
        logger.info(
            "endpoint=%s inference=%s status=%s reason=%s",
            endpoint.name,
            item.inference_id,
            "Expired" if outcome == "expired" else "Failed",
            reason,
        )
        self._live.pop(id(item), None)
        self._tracker.update(endpoint.name, pending=-1, **{outcome: 1})

    def _message(
        self,
        item: Invocation,
        *,
        succeeded: bool,
        output_location: str | None = None,
        output_content_type: str | None = None,
        failure_location: str | None = None,
        failure_reason: str | None = None,
        response: bytes | None = None,
    ) -> str:
        request = item.request
        return build_message(
            region=self._aws.region,
            endpoint_name=self.endpoint.name,
            inference_id=item.inference_id,
            received=item.received,
            finished=datetime.now(timezone.utc),
            input_location=request.input_location,
            content_type=request.content_type,
            accept=request.accept,
            succeeded=succeeded,
            output_location=output_location,
            output_content_type=output_content_type,
            failure_location=failure_location,
            failure_reason=failure_reason,
            response=response,
        )

    async def _publish(self, topic_arn: str, message: str) -> None:
        try:
            await self._aws.publish(topic_arn, message)
        except Exception:
            logger.exception("cannot publish to %s", topic_arn)
