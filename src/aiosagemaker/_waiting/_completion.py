"""``as_completed`` and ``wait``: many responses through their predictors' waiting engines.

Each pending response is registered once with its engine (no task and no poll loop per
response); an engine reads a found result in its own task group, caches it on the response,
and hands the response over here as soon as its outcome is known.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Iterable
from typing import Literal

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from .._binding import Watch
from .._exceptions import PollingTimeoutError
from .._response import AsyncInferenceResponse

__all__ = ["ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION", "as_completed", "wait"]

FIRST_COMPLETED = "FIRST_COMPLETED"
FIRST_EXCEPTION = "FIRST_EXCEPTION"
ALL_COMPLETED = "ALL_COMPLETED"
ReturnWhen = Literal["FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"]


def _unique(responses: Iterable[AsyncInferenceResponse]) -> list[AsyncInferenceResponse]:
    items = list(dict.fromkeys(responses))
    for item in items:
        if not isinstance(item, AsyncInferenceResponse):
            raise TypeError(
                f"as_completed and wait take AsyncInferenceResponse objects, got "
                f"{type(item).__name__}"
            )
    return items


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0
    ):
        raise ValueError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")


async def as_completed(
    responses: Iterable[AsyncInferenceResponse],
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - the asyncio.as_completed signature
) -> AsyncIterator[AsyncInferenceResponse]:
    """Yield each response once its outcome is known, in the order outcomes become known.

    A yielded response has settled: ``response.result()`` returns the cached result or raises
    what its wait ended with (the model's failure, a timeout of its own WaiterConfig, ...);
    ``response.exception()`` tells without raising. Each response waits with its predictor's
    default WaiterConfig.

    Args:
        responses: Responses from one or several predictors (duplicates count once).
        timeout: Overall seconds; when they run out, :class:`PollingTimeoutError` is raised
            for the responses still pending, which stay awaitable.

    Example:
        >>> async for response in as_completed(responses):
        ...     print(response.inference_id, response.exception() or response.result())
    """
    _check_timeout(timeout)
    items = _unique(responses)
    started = time.monotonic()
    deadline = math.inf if timeout is None else started + timeout
    send, receive = anyio.create_memory_object_stream[AsyncInferenceResponse](math.inf)
    handoff = _Handoff(send)
    watches, finished = handoff.watches, handoff.finished
    try:
        for response in items:
            settled = _Settled(handoff, response)
            watch = await response.watch(None, settled)
            if watch is None:
                settled()
            elif response not in finished:
                watches[response] = watch
        for _ in range(len(items)):
            got: AsyncInferenceResponse | None = None
            with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                got = await receive.receive()
            if got is None:
                left = [r for r in items if r not in finished]
                raise PollingTimeoutError(
                    f"as_completed(timeout={timeout}) ran out with {len(left)} of {len(items)} "
                    "responses still pending; they can still be awaited.",
                    output_path=left[0].output_path,
                    seconds=round(time.monotonic() - started, 3),
                )
            yield got
    finally:
        for watch in list(watches.values()):
            watch.cancel()
        send.close()
        receive.close()


class _Settled:
    """A watched response settled: hand it to ``as_completed`` (one small object per
    response, no closure)."""

    __slots__ = ("handoff", "response")

    def __init__(self, handoff: _Handoff, response: AsyncInferenceResponse) -> None:
        self.handoff = handoff
        self.response = response

    def __call__(self) -> None:
        handoff, response = self.handoff, self.response
        handoff.finished.add(response)
        handoff.watches.pop(response, None)
        handoff.send.send_nowait(response)


class _Handoff:
    """What every response of one ``as_completed`` settles into."""

    __slots__ = ("finished", "send", "watches")

    def __init__(self, send: MemoryObjectSendStream[AsyncInferenceResponse]) -> None:
        self.finished: set[AsyncInferenceResponse] = set()
        self.watches: dict[AsyncInferenceResponse, Watch] = {}
        self.send = send


async def wait(
    responses: Iterable[AsyncInferenceResponse],
    *,
    return_when: ReturnWhen = "ALL_COMPLETED",
    timeout: float | None = None,  # noqa: ASYNC109 - the asyncio.wait signature
) -> tuple[set[AsyncInferenceResponse], set[AsyncInferenceResponse]]:
    """Wait for responses as ``asyncio.wait`` does; return ``(done, pending)``.

    Args:
        responses: The responses to wait for.
        return_when: ``"FIRST_COMPLETED"``, ``"FIRST_EXCEPTION"`` (the first whose outcome is
            an error, the model's failure included) or ``"ALL_COMPLETED"`` (asyncio's
            constants work too).
        timeout: Seconds; when they run out, the responses not settled are in ``pending``
            (no exception is raised).
    """
    if return_when not in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
        raise ValueError(
            "return_when must be 'FIRST_COMPLETED', 'FIRST_EXCEPTION' or 'ALL_COMPLETED', got "
            f"{return_when!r}"
        )
    _check_timeout(timeout)
    items = _unique(responses)
    done = {response for response in items if response.done()}  # as asyncio.wait: all of them
    if _satisfied(done, return_when):
        return done, set(items) - done
    iterator = as_completed([r for r in items if r not in done], timeout=timeout)
    try:
        async for response in iterator:
            done.add(response)
            if _satisfied({response}, return_when):
                break
    except PollingTimeoutError:
        pass
    finally:
        await iterator.aclose()  # type: ignore[attr-defined]
    done.update(response for response in items if response.done())
    return done, set(items) - done


def _satisfied(done: set[AsyncInferenceResponse], return_when: ReturnWhen) -> bool:
    """Whether ``done`` (not empty) already ends a ``wait`` with this ``return_when``."""
    if return_when == FIRST_COMPLETED:
        return bool(done)
    if return_when == FIRST_EXCEPTION:
        return any(response.exception() is not None for response in done)
    return False
