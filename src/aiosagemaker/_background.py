"""The predictor's background work: one anyio task group, owned by the open predictor.

The group runs in a task of its own, so a predictor opened lazily inside any task (and any
cancel scope of it) can be closed from another: entering a task group there would tie it to
that task's scope stack. The waiting engine starts its scheduler in this group
(``start_soon``); closing the predictor cancels what is left and waits for it to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

__all__ = ["BackgroundTasks"]


class BackgroundTasks:
    """An async context manager around one task group that lives in its own task."""

    def __init__(self) -> None:
        self._group: anyio.abc.TaskGroup | None = None
        self._host: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BackgroundTasks:
        ready = anyio.Event()

        async def host() -> None:
            async with anyio.create_task_group() as group:
                self._group = group
                ready.set()
                await anyio.sleep_forever()

        self._host = asyncio.get_running_loop().create_task(host(), name="aiosagemaker-background")
        await ready.wait()
        return self

    def start_soon(self, function: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``function()`` in the group."""
        assert self._group is not None, "the background task group is not open"
        self._group.start_soon(function)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        host, self._host = self._host, None
        if self._group is not None:
            self._group.cancel_scope.cancel()
            self._group = None
        if host is not None:
            with anyio.CancelScope(shield=True):
                await asyncio.wait({host})
            if not host.cancelled() and host.exception() is not None:
                raise host.exception()  # type: ignore[misc]
