"""The SQS side of notification-driven completion: the long-poll listener.

Messages are parsed by :mod:`._messages`. :class:`SqsListener` runs as one ``asyncio.Task``
holding an anyio task group: a few concurrent long-poll receivers hand each notification to the
waiters registered for its output location, failure location or inference id (a notification
nobody waits for yet is held for a bounded time), then pass the receipt handles to background
deleters, which delete them in batches. The listener never reads S3: the waiting task does
that, so cancelling a wait never cancels an HTTP call of the listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from botocore.exceptions import BotoCoreError, ClientError

from .._aws_errors import DENIED_CODES, MISSING_QUEUE_CODES, error_code
from .._exceptions import UnexpectedClientError
from ._messages import Key, Notification, UnrecognizedMessageError, parse_message

__all__ = ["ListenerWaiter", "NotificationStats", "SqsListener", "Waiter", "routing_keys"]

logger = logging.getLogger("aiosagemaker")


@dataclass
class NotificationStats:
    """Counters of one notification source, cumulative over its listeners (for benchmarks).

    Attributes:
        received: SQS messages received.
        routed: Notifications handed to a waiting response when they arrived.
        held: Notifications kept because no response was waiting for them (yet).
        early_matched: Held notifications later picked up by a response.
        duplicates: Notifications seen again (SQS delivers at least once); never resolved twice.
        malformed: Messages that could not be parsed.
        foreign: Messages that are not SageMaker notifications.
        deleted: Messages deleted from the queue (only after they were routed or held).
        inline_results: Results taken from the notification's inline body: S3 GETs avoided.
        result_gets: S3 GETs of a result or failure file made because of a notification.
        safety_checks: S3 checks made by the safety-net poll (or by a single check).
        safety_results: Outcomes found by the safety-net poll (lost or late notifications).
        receive_errors: Failed ReceiveMessage / DeleteMessageBatch calls.
        restarts: Times a receiver polled again after an error (or the listener was restarted).
    """

    received: int = 0
    routed: int = 0
    held: int = 0
    early_matched: int = 0
    duplicates: int = 0
    malformed: int = 0
    foreign: int = 0
    deleted: int = 0
    inline_results: int = 0
    result_gets: int = 0
    safety_checks: int = 0
    safety_results: int = 0
    receive_errors: int = 0
    restarts: int = 0


class ListenerWaiter(Protocol):
    """What the listener routes to: the waiting engine's registry entries, or a :class:`Waiter`."""

    @property
    def keys(self) -> list[Key]: ...

    def accepts(self, notification: Notification) -> bool: ...

    def deliver(self, notification: Notification) -> None: ...


def routing_keys(output_path: str, failure_path: str | None, inference_id: str | None) -> list[Key]:
    """The keys a wait for these locations is found under (most specific first)."""
    keys: list[Key] = [("output", output_path)]
    if failure_path is not None:
        keys.append(("failure", failure_path))
    if inference_id:
        keys.append(("id", inference_id))
    return keys


class Waiter:
    """A stand-alone registered wait; ``notification`` is set once, then ``event`` fires."""

    __slots__ = ("event", "failure", "keys", "notification", "output")

    def __init__(self, keys: list[Key], output_path: str, failure_path: str | None) -> None:
        self.keys = keys
        self.output = output_path
        self.failure = failure_path
        self.event = anyio.Event()
        self.notification: Notification | None = None

    def accepts(self, notification: Notification) -> bool:
        """False when the notification names a different location than this response's."""
        if notification.succeeded:
            return notification.output_location in (None, self.output)
        return notification.failure_location in (None, self.failure)

    def deliver(self, notification: Notification) -> None:
        if self.notification is None:
            self.notification = notification
            self.event.set()


@dataclass
class _Held:
    notification: Notification
    expires: float
    delivered: bool = field(default=False)


class SqsListener:
    """Long polls over one queue, routing notifications to registered waiters.

    Up to ``receivers`` ReceiveMessage calls run at once: the first receiver always polls, the
    others only while receives return messages (an idle queue costs one long poll at a time).
    A receiver routes what it got synchronously, then hands the receipt handles to as many
    background deleters, which delete them with DeleteMessageBatch (up to 10 per call), so a
    message is deleted only after the listener acted on it, and receiving never waits for a
    delete.

    Args:
        sqs: An open aiobotocore SQS client (owned by the caller).
        queue_url: The queue to read.
        stats: Counters to update.
        wait_time_seconds: ReceiveMessage long-poll time (1-20).
        receivers: Most ReceiveMessage calls in flight at once (and DeleteMessageBatch calls).
        visibility_timeout: VisibilityTimeout for received messages; None: the queue's.
        hold_seconds: How long a notification nobody waits for is kept.
        max_held: Most notifications kept at once (oldest dropped first).
        max_held_body_bytes: Most inline-body bytes kept among held notifications.
        unrecognized: ``"delete"`` or ``"leave"`` (for a dead-letter queue) bad messages.
        retry_delay / max_retry_delay: Backoff after a failed SQS call.
        shutdown_timeout: How long :meth:`aclose` waits for in-flight receives, then again
            for the pending deletes.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        stats: NotificationStats,
        *,
        wait_time_seconds: int = 20,
        receivers: int = 4,
        visibility_timeout: int | None = None,
        hold_seconds: float = 300.0,
        max_held: int = 10_000,
        max_held_body_bytes: int = 32 * 1024 * 1024,
        unrecognized: Literal["delete", "leave"] = "delete",
        retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
        shutdown_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.stats = stats
        self.wait_time_seconds = wait_time_seconds
        self.receivers = receivers
        self.visibility_timeout = visibility_timeout
        self.hold_seconds = hold_seconds
        self.max_held = max_held
        self.max_held_body_bytes = max_held_body_bytes
        self.unrecognized = unrecognized
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.shutdown_timeout = shutdown_timeout
        self.clock = clock
        self._waiters: dict[Key, list[ListenerWaiter]] = {}
        self._held: OrderedDict[Key, _Held] = OrderedDict()
        self._aliases: dict[Key, Key] = {}
        self._held_body_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._stop: anyio.Event | None = None
        self._receiving: anyio.CancelScope | None = None
        self._flowing = False
        self._flow: anyio.Event | None = None
        self._start_lock: anyio.Lock | None = None
        self._checked = False
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the loop unless it runs; check the queue once (a missing queue raises).

        Raises:
            UnexpectedClientError: The queue does not exist or may not be read.
        """
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "notifications need the asyncio event loop (the listener is an asyncio task, "
                "and aiobotocore's default HTTP backend is asyncio-only); on trio, leave "
                "notifications=None to poll S3"
            ) from None
        if self._closed:
            raise RuntimeError("the notification listener is closed; reopen the predictor")
        if self._start_lock is None:
            self._start_lock = anyio.Lock()
        async with self._start_lock:
            if self._task is not None and not self._task.done():
                return
            if not self._checked:
                await self._check_queue()
                self._checked = True
            if self._task is not None:
                error = None if self._task.cancelled() else self._task.exception()
                self.stats.restarts += 1
                logger.warning(
                    "notification listener on %s stopped (%r); restarting", self.queue_url, error
                )
            self._stop = anyio.Event()
            self._receiving = anyio.CancelScope()
            self._flowing = False
            self._flow = anyio.Event()
            self._task = loop.create_task(
                self._run(), name=f"aiosagemaker-sqs-listener {self.queue_url}"
            )

    async def _check_queue(self) -> None:
        try:
            await self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
            )
        except ClientError as error:
            code = error_code(error)
            if code in MISSING_QUEUE_CODES:
                raise UnexpectedClientError(
                    f"the notification queue {self.queue_url} does not exist. Create it and "
                    "subscribe it to the endpoint's SuccessTopic and ErrorTopic with "
                    "aiosagemaker.ensure_notification_queue(), and check the region and the SQS "
                    "endpoint (AWS_ENDPOINT_URL_SQS)",
                    code=code,
                ) from error
            if code in DENIED_CODES:
                raise UnexpectedClientError(
                    f"access denied to the notification queue {self.queue_url}: grant the "
                    "caller sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes",
                    code=code,
                ) from error
            logger.warning("could not check notification queue %s: %s", self.queue_url, error)
        except (BotoCoreError, OSError) as error:
            logger.warning("could not check notification queue %s: %s", self.queue_url, error)

    async def aclose(self) -> None:
        """Stop: let in-flight receives finish, then flush the pending deletes (each bounded).

        Messages already received are routed, and their deletes are flushed for up to
        ``shutdown_timeout``. A receive still running after ``shutdown_timeout`` is cancelled:
        the messages SQS may have handed it stay in the queue and become visible again after
        their visibility timeout, as do messages whose delete did not finish in time (the next
        reader then sees those as duplicates). Nothing is deleted that was not acted on.
        """
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        if self._stop is not None:
            self._stop.set()
        if self._flow is not None:
            self._flow.set()  # parked extra receivers wake up and see the stop
        done, _ = await asyncio.wait({task}, timeout=self.shutdown_timeout)
        if not done and self._receiving is not None:
            self._receiving.cancel()  # cut the long polls short; the deleters flush
            done, _ = await asyncio.wait({task}, timeout=self.shutdown_timeout)
        if not done:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for waiters in self._waiters.values():
            waiters.clear()

    @property
    def running(self) -> bool:
        """Whether the loop task is alive."""
        return self._task is not None and not self._task.done()

    # -- waiters -------------------------------------------------------------------------

    def register(
        self,
        output_path: str,
        failure_path: str | None,
        inference_id: str | None,
        *,
        use_held: bool = True,
    ) -> Waiter:
        """Wait for a notification about these locations; a held one is delivered at once."""
        waiter = Waiter(
            routing_keys(output_path, failure_path, inference_id), output_path, failure_path
        )
        self.attach(waiter, use_held=use_held)
        return waiter

    def attach(self, waiter: ListenerWaiter, *, use_held: bool = True) -> None:
        """Route notifications for ``waiter.keys`` to ``waiter``; a held one is delivered now."""
        held = self.lookup(waiter) if use_held else None
        if held is not None:
            waiter.deliver(held)
            return
        for key in waiter.keys:
            self._waiters.setdefault(key, []).append(waiter)

    def unregister(self, waiter: ListenerWaiter) -> None:
        """Forget a waiter (idempotent)."""
        for key in waiter.keys:
            waiters = self._waiters.get(key)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[key]

    def lookup(self, waiter: ListenerWaiter) -> Notification | None:
        """A held notification for this waiter's locations, if one is kept."""
        self._expire()
        for key in waiter.keys:
            entry = self._held.get(self._aliases.get(key, key))
            if entry is not None and waiter.accepts(entry.notification):
                if not entry.delivered:
                    entry.delivered = True
                    self.stats.early_matched += 1
                return entry.notification
        return None

    # -- routing -------------------------------------------------------------------------

    def route(self, notification: Notification) -> None:
        """Hand a notification to its waiters and keep it (bounded) for later ones."""
        self._expire()
        keys = notification.routing_keys()
        duplicate = keys[0] in self._held  # the most specific key: reused ids are not duplicates
        if duplicate:
            self.stats.duplicates += 1
        matched: list[ListenerWaiter] = []
        for key in keys:
            for waiter in self._waiters.get(key, ()):
                if waiter not in matched and waiter.accepts(notification):
                    matched.append(waiter)
        for waiter in matched:
            self.unregister(waiter)
            waiter.deliver(notification)
        if matched and not duplicate:
            self.stats.routed += 1
        elif not matched and not duplicate:
            self.stats.held += 1
        self._hold(notification, keys, delivered=bool(matched) or duplicate)

    def _hold(self, notification: Notification, keys: list[Key], *, delivered: bool) -> None:
        """Keep a notification under its most specific key; its other keys are aliases."""
        primary = keys[0]
        old = self._held.pop(primary, None)
        if old is not None:
            self._drop(primary, old)
            delivered = delivered or old.delivered
        body = notification.body
        if body is not None and (
            delivered or self._held_body_bytes + len(body) > self.max_held_body_bytes
        ):
            notification = replace(notification, body=None)
        self._held[primary] = _Held(notification, self.clock() + self.hold_seconds, delivered)
        if notification.body is not None:
            self._held_body_bytes += len(notification.body)
        for key in keys:
            self._aliases[key] = primary
        while len(self._held) > self.max_held:
            self._drop(*self._held.popitem(last=False))

    def _drop(self, primary: Key, entry: _Held) -> None:
        """Forget the aliases and the body bytes of an entry already removed from ``_held``."""
        if entry.notification.body is not None:
            self._held_body_bytes -= len(entry.notification.body)
        for key in entry.notification.routing_keys():
            if self._aliases.get(key) == primary:
                del self._aliases[key]

    def _expire(self) -> None:
        now = self.clock()
        while self._held:
            primary, entry = next(iter(self._held.items()))
            if entry.expires > now:
                break
            del self._held[primary]
            self._drop(primary, entry)

    # -- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        """Receivers route messages and pass their receipt handles to the deleters."""
        assert self._stop is not None and self._receiving is not None
        stop = self._stop
        send, receive = anyio.create_memory_object_stream[list[str]](math.inf)
        async with anyio.create_task_group() as tasks:
            for _ in range(self.receivers):
                tasks.start_soon(self._delete_loop, receive.clone())
            receive.close()
            with send, self._receiving:
                async with anyio.create_task_group() as receivers:
                    for index in range(self.receivers):
                        receivers.start_soon(self._receive_loop, send, stop, index > 0)
            # the send stream is closed: the deleters drain what is left, then end

    async def _receive_loop(
        self, handles: MemoryObjectSendStream[list[str]], stop: anyio.Event, extra: bool
    ) -> None:
        """One long poll after another; an ``extra`` receiver polls only while messages flow."""
        delay = self.retry_delay
        while not stop.is_set():
            if extra and not self._flowing:
                assert self._flow is not None
                await self._flow.wait()
                continue
            try:
                messages = await self._receive()
                if messages:
                    self._set_flowing(True)
                    handles.send_nowait(self._handle(messages))
                else:
                    self._set_flowing(False)
                delay = self.retry_delay
            except Exception as error:  # never BaseException: cancellation ends the loop
                self._count_error(error, "ReceiveMessage", delay)
                with anyio.move_on_after(delay):
                    await stop.wait()
                delay = min(delay * 2, self.max_retry_delay)
                if not stop.is_set():
                    self.stats.restarts += 1

    def _set_flowing(self, flowing: bool) -> None:
        """Wake the extra receivers when messages flow; they park after an empty receive."""
        self._flowing = flowing
        if self._flow is None:
            return
        if flowing:
            self._flow.set()
        elif self._flow.is_set():
            self._flow = anyio.Event()

    def _count_error(self, error: Exception, call: str, delay: float | None) -> None:
        self.stats.receive_errors += 1
        expected = isinstance(error, (BotoCoreError, ClientError, OSError, TimeoutError))
        logger.log(
            logging.WARNING if expected else logging.ERROR,
            "notification listener on %s: %s: %r; %s",
            self.queue_url,
            call,
            error,
            "the messages come back after their visibility timeout"
            if delay is None
            else f"retrying in {delay:.2f} s",
            exc_info=not expected,
        )

    async def _receive(self) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MaxNumberOfMessages": 10,
            "WaitTimeSeconds": self.wait_time_seconds,
        }
        if self.visibility_timeout is not None:
            params["VisibilityTimeout"] = self.visibility_timeout
        # An outer deadline on top of botocore's socket timeouts: a hung long poll must end.
        with anyio.fail_after(self.wait_time_seconds + 30):
            response = await self.sqs.receive_message(**params)
        messages: list[dict[str, Any]] = response.get("Messages", [])
        self.stats.received += len(messages)
        return messages

    def _handle(self, messages: list[dict[str, Any]]) -> list[str]:
        """Route each message; the receipt handles of those acted on (to delete)."""
        to_delete: list[str] = []
        for message in messages:
            handle = message.get("ReceiptHandle")
            try:
                notification = parse_message(message.get("Body", ""))
            except UnrecognizedMessageError as error:
                self._count_unrecognized(error, message)
                if self.unrecognized == "delete" and handle:
                    to_delete.append(handle)
                continue
            self.route(notification)
            if handle:
                to_delete.append(handle)
        return to_delete

    def _count_unrecognized(self, error: UnrecognizedMessageError, message: dict[str, Any]) -> None:
        if error.kind == "foreign":
            self.stats.foreign += 1
        else:
            self.stats.malformed += 1
        logger.warning(
            "notification queue %s: %s (MessageId %s); %s",
            self.queue_url,
            error,
            message.get("MessageId"),
            "deleted" if self.unrecognized == "delete" else "left for the queue's redrive policy",
        )

    async def _delete_loop(self, pending: MemoryObjectReceiveStream[list[str]]) -> None:
        """Delete handed-over messages in batches of up to 10, until the stream ends."""
        async with pending:
            async for handles in pending:
                batch = list(handles)
                while len(batch) < 10:
                    try:
                        batch += pending.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                for start in range(0, len(batch), 10):
                    try:
                        await self._delete(batch[start : start + 10])
                    except Exception as error:  # never BaseException: cancellation ends it
                        self._count_error(error, "DeleteMessageBatch", None)

    async def _delete(self, handles: list[str]) -> None:
        if not handles:
            return
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
        response = await self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        failed = response.get("Failed") or []
        self.stats.deleted += len(handles) - len(failed)
        for entry in failed:
            # Not fatal: the message comes back after its visibility timeout, as a duplicate.
            logger.warning("could not delete a notification from %s: %s", self.queue_url, entry)
