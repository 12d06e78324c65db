"""Optional OpenTelemetry: spans for submit and wait, counters for outcomes and S3 requests.

With the ``otel`` extra (``opentelemetry-api``) installed, every predictor records through the
global tracer and meter providers (no-ops until an SDK is configured):

- spans ``aiosagemaker.submit`` (around ``predict_async``) and ``aiosagemaker.wait`` (around a
  wait), with the endpoint name, the inference id and the S3 locations as attributes;
- counters ``aiosagemaker.inferences.submitted``, ``.completed``, ``.failed`` and
  ``.timed_out``, and ``aiosagemaker.s3.requests`` by ``operation``.

Payloads, results and failure texts are never recorded. Without the package nothing is
imported and every call here is a no-op. ``AsyncPredictor(telemetry=False)`` turns it off.
Until a tracer provider is configured no span object is made at all (10,000 requests in
flight would otherwise each hold a no-op span, its context and generators).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

__all__ = ["Telemetry"]

_NAME = "aiosagemaker"
_NO_SPAN: AbstractContextManager[None] = contextlib.nullcontext()
"""What :meth:`Telemetry.span` returns when nothing would record it (reusable, shared)."""


class Telemetry:
    """The spans and counters of one predictor (all no-ops when disabled)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and importlib.util.find_spec("opentelemetry") is not None
        self._tracer: Any = None
        self._recording: Callable[[], bool] | None = None
        """Tells whether a tracer provider that records spans is configured (it may be set
        after the predictor was made)."""
        self._counters: dict[str, Any] = {}
        if self.enabled:
            try:
                import opentelemetry.metrics as otel_metrics
                import opentelemetry.trace as otel_trace
            except ImportError:  # a namespace package without the API
                self.enabled = False
                return

            from . import __version__

            self._tracer = otel_trace.get_tracer(_NAME, __version__)
            self._recording = _provider_check(otel_trace)
            meter = otel_metrics.get_meter(_NAME, __version__)
            for name, unit, description in (
                ("inferences.submitted", "{inference}", "inferences accepted by the endpoint"),
                ("inferences.completed", "{inference}", "results fetched"),
                ("inferences.failed", "{inference}", "model failures and other errors"),
                ("inferences.timed_out", "{inference}", "waits that ran out"),
                ("s3.requests", "{request}", "S3 requests made by the library"),
            ):
                self._counters[name] = meter.create_counter(
                    f"{_NAME}.{name}", unit=unit, description=description
                )

    def span(self, name: str, **attributes: str | None) -> AbstractContextManager[Any]:
        """A span ``aiosagemaker.<name>`` (None-valued attributes are left out).

        ``with telemetry.span(...) as span``: ``span`` is None (and nothing is allocated)
        when disabled or when no tracer provider is configured yet.
        """
        if self._recording is None or not self._recording():
            return _NO_SPAN
        kept = {f"{_NAME}.{key}": value for key, value in attributes.items() if value is not None}
        return self._tracer.start_as_current_span(  # type: ignore[no-any-return]
            f"{_NAME}.{name}", attributes=kept
        )

    def count(self, name: str, amount: int = 1, **attributes: str) -> None:
        """Add ``amount`` to counter ``aiosagemaker.<name>``."""
        counter = self._counters.get(name)
        if counter is not None:
            counter.add(amount, attributes)

    def s3_request(self, operation: str) -> None:
        """One S3 request (``GetObject``, ``ListObjectsV2``, ``PutObject``, ...)."""
        self.count("s3.requests", operation=operation)


def _provider_check(otel_trace: Any) -> Callable[[], bool]:
    """A callable telling whether the global tracer provider records spans: not before one is
    set (the API's proxy stands in) nor when it is the API's no-op provider."""
    idle = (otel_trace.ProxyTracerProvider, otel_trace.NoOpTracerProvider)
    get_provider = otel_trace.get_tracer_provider

    def recording() -> bool:
        return not isinstance(get_provider(), idle)

    return recording
