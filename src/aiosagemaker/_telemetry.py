"""Optional OpenTelemetry: spans for submit and wait, counters for outcomes and S3 requests.

With the ``otel`` extra (``opentelemetry-api``) installed, every predictor records through the
global tracer and meter providers (no-ops until an SDK is configured):

- spans ``aiosagemaker.submit`` (around ``predict_async``) and ``aiosagemaker.wait`` (around a
  wait), with the endpoint name, the inference id and the S3 locations as attributes;
- counters ``aiosagemaker.inferences.submitted``, ``.completed``, ``.failed`` and
  ``.timed_out``, and ``aiosagemaker.s3.requests`` by ``operation``.

Payloads, results and failure texts are never recorded. Without the package nothing is
imported and every call here is a no-op. ``AsyncPredictor(telemetry=False)`` turns it off.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from typing import Any

__all__ = ["Telemetry"]

_NAME = "aiosagemaker"


class Telemetry:
    """The spans and counters of one predictor (all no-ops when disabled)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and importlib.util.find_spec("opentelemetry") is not None
        self._tracer: Any = None
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

    @contextlib.contextmanager
    def span(self, name: str, **attributes: str | None) -> Iterator[Any]:
        """A span ``aiosagemaker.<name>`` (None-valued attributes are left out)."""
        if self._tracer is None:
            yield None
            return
        kept = {f"{_NAME}.{key}": value for key, value in attributes.items() if value is not None}
        with self._tracer.start_as_current_span(f"{_NAME}.{name}", attributes=kept) as span:
            yield span

    def count(self, name: str, amount: int = 1, **attributes: str) -> None:
        """Add ``amount`` to counter ``aiosagemaker.<name>``."""
        counter = self._counters.get(name)
        if counter is not None:
            counter.add(amount, attributes)

    def s3_request(self, operation: str) -> None:
        """One S3 request (``GetObject``, ``ListObjectsV2``, ``PutObject``, ...)."""
        self.count("s3.requests", operation=operation)
