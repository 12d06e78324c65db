"""OpenTelemetry: spans for submit and wait, outcome and S3 request counters, no payloads."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aiosagemaker import AsyncInferenceModelError, PollingTimeoutError, WaiterConfig
from helpers import make_predictor

pytestmark = pytest.mark.anyio

SECRET = "payload-that-must-never-be-recorded"


@pytest.fixture(scope="module")
def recorders() -> tuple[InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return spans, reader


def counters(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[Any, ...]], int]:
    data = reader.get_metrics_data()
    found: dict[tuple[str, tuple[Any, ...]], int] = {}
    for resource in [] if data is None else data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = tuple(sorted((point.attributes or {}).items()))
                    found[(metric.name, attributes)] = int(getattr(point, "value", 0))
    return found


async def test_spans_and_counters(
    aws_env: dict[str, str], recorders: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    spans, reader = recorders
    spans.clear()
    before = counters(reader)
    async with make_predictor() as predictor:
        assert await predictor.predict({"output": SECRET}) == SECRET
        with pytest.raises(AsyncInferenceModelError):
            await predictor.predict({"fail": SECRET})
        response = await predictor.predict_async({"sleep": 5})
        with pytest.raises(PollingTimeoutError):
            await response.get_result(WaiterConfig(max_attempts=2, delay=0.05))
    names = [span.name for span in spans.get_finished_spans()]
    assert names.count("aiosagemaker.submit") == 3 and names.count("aiosagemaker.wait") == 3
    submit = next(s for s in spans.get_finished_spans() if s.name == "aiosagemaker.submit")
    assert submit.attributes is not None
    assert submit.attributes["aiosagemaker.endpoint"] == "scripted"
    assert str(submit.attributes["aiosagemaker.output_path"]).startswith("s3://")
    for span in spans.get_finished_spans():
        assert SECRET not in repr(dict(span.attributes or {})), span.name
    after = counters(reader)
    endpoint = (("endpoint", "scripted"),)

    def delta(name: str, attributes: tuple[Any, ...] = endpoint) -> int:
        key = (f"aiosagemaker.{name}", attributes)
        return after.get(key, 0) - before.get(key, 0)

    assert delta("inferences.submitted") == 3
    assert delta("inferences.completed") == 1
    assert delta("inferences.failed") == 1
    assert delta("inferences.timed_out") == 1
    assert delta("s3.requests", (("operation", "GetObject"),)) >= 3


async def test_telemetry_can_be_switched_off(
    aws_env: dict[str, str], recorders: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    spans, _ = recorders
    spans.clear()
    async with make_predictor(telemetry=False) as predictor:
        assert await predictor.predict({"output": 1}) == 1
    assert spans.get_finished_spans() == ()


def test_no_span_object_is_made_until_a_tracer_provider_is_configured() -> None:
    # a fresh interpreter: this module sets a global provider. 10,000 requests in flight each
    # held a no-op span, its context and generators when the API alone was installed.
    code = (
        "from aiosagemaker._telemetry import Telemetry\n"
        "telemetry = Telemetry()\n"
        "first, second = telemetry.span('submit', endpoint='e'), telemetry.span('wait')\n"
        "with first as span:\n"
        "    assert span is None, span\n"
        "assert first is second, 'a span object per call'\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "trace.set_tracer_provider(TracerProvider())\n"
        "with telemetry.span('submit', endpoint='e') as span:\n"
        "    assert span is not None and span.is_recording(), span\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
