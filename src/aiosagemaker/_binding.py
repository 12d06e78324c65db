"""What a response is bound to: its predictor's engine and defaults, and its engine watch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ._callbacks import CallbackRunner
from ._config import WaiterConfig
from ._exceptions import PollingTimeoutError
from ._telemetry import Telemetry
from ._types import Deserializer
from ._waiting import WaitingEngine
from ._waiting._registry import Entry

__all__ = ["BindingSource", "ResponseBinding", "Watch"]


@dataclass(frozen=True, slots=True)
class ResponseBinding:
    """What a response needs from the predictor that made it (and nothing more).

    Attributes:
        engine: Opens the predictor if needed and returns its waiting engine.
        deserializer: Decodes results.
        waiter_config: What ``await response`` waits with.
        endpoint_name: Written into continuation tokens.
        max_result_bytes: ``get_result`` refuses larger results (None: no limit).
        telemetry: Spans and counters (None: none).
        explain_timeout: Adds what it can find out to a PollingTimeoutError (see _scaling).
    """

    engine: Callable[[], Awaitable[WaitingEngine]]
    deserializer: Deserializer
    waiter_config: WaiterConfig
    endpoint_name: str
    max_result_bytes: int | None
    telemetry: Telemetry | None = None
    explain_timeout: Callable[[PollingTimeoutError], Awaitable[None]] | None = None
    callbacks: CallbackRunner | None = None
    """Runs done callbacks (None: each response runs its own)."""


@dataclass(frozen=True, slots=True)
class Watch:
    """A response registered with its waiting engine.

    Returned by :meth:`._response.AsyncInferenceResponse.watch`.
    """

    engine: WaitingEngine
    entry: Entry

    def cancel(self) -> None:
        """Stop watching (idempotent); the inference goes on and can be awaited again."""
        self.engine.unregister(self.entry)


class BindingSource(Protocol):
    """Anything that hands out a :class:`ResponseBinding` (an ``AsyncPredictor``)."""

    @property
    def response_binding(self) -> ResponseBinding: ...
