"""Done callbacks of responses: run on the predictor's event loop, errors logged, ended at close."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

__all__ = ["CLOSE_GRACE", "CallbackRunner", "DoneCallbacks"]

logger = logging.getLogger("aiosagemaker")

CLOSE_GRACE = 5.0
"""Seconds that closing the predictor gives running async callbacks before cancelling them."""


class CallbackRunner:
    """The tasks of one predictor's done callbacks (and of the watches that fire them)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watches: set[asyncio.Task[Any]] = set()

    def call(self, fn: Callable[[Any], Any], response: Any) -> None:
        """Run ``fn(response)`` soon, in a task; awaited if it returns an awaitable."""
        self._spawn(self._run(fn, response), self._tasks)

    def watch(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run the registration of a response's callback watch (cancelled first at close)."""
        self._spawn(coroutine, self._watches)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], tasks: set[asyncio.Task[Any]]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name="aiosagemaker-callback")
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    @staticmethod
    async def _run(fn: Callable[[Any], Any], response: Any) -> None:
        try:
            result = fn(response)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("the done callback %r of %r raised", fn, response)

    async def cancel_watches(self) -> None:
        """Cancel the registrations still running (their responses settle as closed)."""
        watches = set(self._watches)
        for task in watches:
            task.cancel()
        if watches:
            await asyncio.wait(watches)

    async def aclose(self) -> None:
        """Wait for the callbacks (``CLOSE_GRACE`` seconds), then cancel those still running."""
        while self._tasks:
            tasks = set(self._tasks)
            _, late = await asyncio.wait(tasks, timeout=CLOSE_GRACE)
            for task in late:
                logger.warning("cancelling a done callback still running at close: %r", task)
                task.cancel()
            if late:
                await asyncio.wait(late)


class _Cancellable(Protocol):
    def cancel(self) -> None: ...


class DoneCallbacks:
    """One response's done callbacks: each called once, when the response settles.

    Args:
        runner: The predictor's runner (None: the response gets one of its own).
    """

    __slots__ = ("_fns", "_runner", "settled", "watch")

    def __init__(self, runner: CallbackRunner | None) -> None:
        self._runner = runner
        self._fns: list[Callable[[Any], Any]] = []
        self.settled = False
        self.watch: _Cancellable | None = None
        """The watch that settles the response for its callbacks (stopped when it settles)."""

    def runner(self) -> CallbackRunner:
        """The runner the callbacks (and their watch's registration) run on."""
        if self._runner is None:
            self._runner = CallbackRunner()
        return self._runner

    def add(self, fn: Callable[[Any], Any], response: Any) -> bool:
        """Call ``fn(response)`` when it settles (at once if it has); True for the first one."""
        if self.settled or response.done():
            self.settled = True
            self.runner().call(fn, response)
            return False
        self._fns.append(fn)
        return len(self._fns) == 1

    def settle(self, response: Any) -> None:
        """The response settled: call its callbacks (once) and stop their watch."""
        if self.settled:
            return
        self.settled = True
        watch, self.watch = self.watch, None
        if watch is not None:
            watch.cancel()
        fns, self._fns = self._fns, []
        for fn in fns:
            self.runner().call(fn, response)
