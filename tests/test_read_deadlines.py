"""Reading a found result: deadlines, size limits, broken bodies, decoding off the loop.

The result objects are written to moto directly; the faults (a GET that hangs, a body that
stalls, is cut or comes chunked, a listed key that does not GET) are injected by the
recording proxy, on the server side.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from typing import IO, Any, Literal

import anyio
import pytest
from botocore.exceptions import BotoCoreError

import aiosagemaker._s3_transport
from aiosagemaker import (
    AsyncInferenceResponse,
    BytesDeserializer,
    CSVDeserializer,
    PollingTimeoutError,
    ResultTooLargeError,
    UnexpectedClientError,
    WaiterConfig,
    as_completed,
)
from aiosagemaker._waiting._schedule import FINAL_CHECK_GRACE
from aiosagemaker.deserializers import OFF_LOOP_BYTES
from conftest import BUCKET
from helpers import FAST, make_predictor
from s3_fault_proxy import Fault, S3FaultProxy

pytestmark = pytest.mark.anyio

TIMEOUT = WaiterConfig(max_attempts=None, delay=0.2, timeout=2)
SLACK = 5.0
"""Seconds past a deadline that still prove "did not hang" on a loaded machine: the bounds
stay under the faults' 8 s hang (longer hangs would outlast the proxy's 10 s shutdown)."""


async def put_result(s3: Any, body: bytes, folder: str = "rd") -> str:
    """Write a result object to S3 (moto) and return its ``s3://`` location."""
    key = f"{folder}-{uuid.uuid4().hex[:8]}/result.out"
    await s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def object_path(uri: str) -> str:
    return "/" + uri.removeprefix("s3://")


def failure_of(uri: str) -> str:
    return uri.replace("/result.out", "/failure.out")


# -- finding 1: a timeout bounds the result read --------------------------------------------


@pytest.mark.parametrize(
    ("detection", "size", "fault"),
    [
        ("list", 100, "hang"),  # listed; the result GET never answers
        ("list", 100, "stall"),  # listed; the body stops half-way
        ("get", 2 * 1024 * 1024, "stall"),  # over the probe's 1 MiB: the waiter's GET stalls
    ],
)
async def test_timeout_bounds_the_result_read(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy, s3: Any, detection: str, size: int, fault: str
) -> None:
    uri = await put_result(s3, bytes(size))
    s3_proxy.add(Fault("GET", object_path(uri), after_forward=fault, hang=8))  # type: ignore[arg-type]
    async with make_predictor(detection=detection, deserializer=BytesDeserializer()) as predictor:
        response = AsyncInferenceResponse(predictor, uri, failure_of(uri))
        started = time.monotonic()
        with anyio.fail_after(15), pytest.raises(PollingTimeoutError) as caught:
            await response.get_result(TIMEOUT)
        waited = time.monotonic() - started
    assert waited < 2 + FINAL_CHECK_GRACE + SLACK, waited
    assert caught.value.__cause__ is not None
    assert caught.value.output_path == uri
    assert "was found, but reading it did not finish" in str(caught.value)


async def test_timeout_bounds_a_download(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy, s3: Any, tmp_path: Any
) -> None:
    uri = await put_result(s3, bytes(3 * 1024 * 1024))
    s3_proxy.add(Fault("GET", object_path(uri), after_forward="stall", hang=8))
    async with make_predictor() as predictor:
        response = AsyncInferenceResponse(predictor, uri, failure_of(uri))
        started = time.monotonic()
        with anyio.fail_after(15), pytest.raises(PollingTimeoutError) as caught:
            await response.download(tmp_path / "result.bin", TIMEOUT)
        waited = time.monotonic() - started
    assert waited < 2 + FINAL_CHECK_GRACE + SLACK, waited
    assert caught.value.__cause__ is not None
    assert [p.name async for p in anyio.Path(tmp_path).iterdir()] == []


@pytest.mark.parametrize(
    ("fault", "body", "says"),
    [("hang", b"never arrives", "no answer"), ("stall", bytes(64 * 1024), "body stopped")],
)
async def test_a_single_check_is_bounded_without_a_wait(
    aws_env: dict[str, str],
    s3_proxy: S3FaultProxy,
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
    fault: Literal["hang", "stall"],
    body: bytes,
    says: str,
) -> None:
    monkeypatch.setattr(aiosagemaker._s3_transport, "READ_STALL_TIMEOUT", 1.0)
    uri = await put_result(s3, body)
    s3_proxy.add(Fault("GET", object_path(uri), after_forward=fault, hang=8))
    async with make_predictor() as predictor:
        response = AsyncInferenceResponse(predictor, uri, failure_of(uri))
        with anyio.fail_after(15), pytest.raises(UnexpectedClientError) as caught:
            await response.get_result()
    assert caught.value.output_path == uri and uri in str(caught.value)
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert says in str(caught.value.__cause__)
    assert s3_proxy.count("GET", object_path(uri)) >= 2  # tried, then retried


# -- finding 2: max_result_bytes holds without a Content-Length -----------------------------


async def test_max_result_bytes_holds_for_a_chunked_result(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy, s3: Any
) -> None:
    limit = 4 * 1024 * 1024
    small = bytes(range(256)) * 8 * 1024  # 2 MiB: more than a probe hands over, within the limit
    uris = [await put_result(s3, small), await put_result(s3, bytes(limit + 1))]
    for uri in uris:  # sent without Content-Length
        s3_proxy.add(Fault("GET", object_path(uri), after_forward="chunked"))
    async with make_predictor(
        detection="get", max_result_bytes=limit, deserializer=BytesDeserializer()
    ) as predictor:
        within, over = (AsyncInferenceResponse(predictor, uri, failure_of(uri)) for uri in uris)
        assert await within.get_result(FAST) == small
        with pytest.raises(ResultTooLargeError, match="at least") as caught:
            await over.get_result(FAST)
    assert caught.value.output_path == uris[1] and caught.value.limit == limit
    assert uris[1] in str(caught.value)
    head = await s3.head_object(Bucket=BUCKET, Key=uris[1].split("/", 3)[3])
    assert head["ContentLength"] == limit + 1  # still in S3


# -- finding 3: keys that list but do not GET: on virtual time, in test_engine_fake_time.py --


# -- finding 4: a truncated body -------------------------------------------------------------


async def test_a_truncated_body_is_retried_then_a_typed_error(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy, s3: Any
) -> None:
    uri = await put_result(s3, bytes(200 * 1024))
    s3_proxy.add(Fault("GET", object_path(uri), after_forward="truncate"))
    async with make_predictor(detection="list", deserializer=BytesDeserializer()) as predictor:
        response = AsyncInferenceResponse(predictor, uri, failure_of(uri))
        with anyio.fail_after(20), pytest.raises(PollingTimeoutError) as caught:
            await response.get_result(WaiterConfig(max_attempts=None, delay=0.05, timeout=2))
        # without a wait: the single check's bounded retries, then the S3 error, typed
        with anyio.fail_after(20), pytest.raises(UnexpectedClientError) as single:
            await response.get_result()
    # read again (3 retries each round) and looked for again until the timeout; still in S3
    assert caught.value.output_path == uri and f"{uri} was found" in str(caught.value)
    assert "kept failing" in str(caught.value)
    assert isinstance(caught.value.__cause__, BotoCoreError)
    assert s3_proxy.count("GET", object_path(uri)) >= 8
    assert single.value.output_path == uri and uri in str(single.value)
    assert isinstance(single.value.__cause__, BotoCoreError)


async def test_a_truncated_body_once_is_read_again(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy, s3: Any
) -> None:
    payload = bytes(range(256)) * 800
    uri = await put_result(s3, payload)
    s3_proxy.add(Fault("GET", object_path(uri), after_forward="truncate", times=1))
    async with make_predictor(detection="list", deserializer=BytesDeserializer()) as predictor:
        response = AsyncInferenceResponse(predictor, uri, failure_of(uri))
        with anyio.fail_after(20):
            assert await response.get_result(FAST) == payload


# -- finding 5: large results are decoded off the event loop --------------------------------


class ThreadRecorder(BytesDeserializer):
    """Returns the body's length and records the thread that decoded it."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []

    def deserialize(self, stream: IO[bytes], content_type: str) -> Any:
        self.threads.append(threading.current_thread())
        return len(super().deserialize(stream, content_type))


async def test_large_results_are_decoded_in_a_worker_thread(
    aws_env: dict[str, str], s3: Any
) -> None:
    small = await put_result(s3, bytes(1000))
    large = await put_result(s3, bytes(OFF_LOOP_BYTES + 1))
    recorder = ThreadRecorder()
    async with make_predictor(deserializer=recorder) as predictor:
        assert await AsyncInferenceResponse(predictor, small, None).get_result(FAST) == 1000
        assert await AsyncInferenceResponse(predictor, large, None).get_result(FAST) == (
            OFF_LOOP_BYTES + 1
        )
    loop_thread = threading.current_thread()
    assert recorder.threads[0] is loop_thread
    assert recorder.threads[1] is not loop_thread


async def test_as_completed_decodes_large_results_in_a_worker_thread(
    aws_env: dict[str, str], s3: Any
) -> None:
    small = await put_result(s3, bytes(1000))
    large = await put_result(s3, bytes(OFF_LOOP_BYTES + 1))
    recorder = ThreadRecorder()
    async with make_predictor(deserializer=recorder) as predictor:
        responses = {
            AsyncInferenceResponse(predictor, small, None): 1000,
            AsyncInferenceResponse(predictor, large, None): OFF_LOOP_BYTES + 1,
        }
        async for response in as_completed(responses):
            assert response.result() == responses[response]
    loop_thread = threading.current_thread()
    assert sorted(thread is loop_thread for thread in recorder.threads) == [False, True]


async def test_csv_decoding_in_a_worker_thread_lets_the_loop_run() -> None:
    # a parse that is one C call (list(csv.reader(...))) would hold the GIL throughout
    data = b"\n".join(b"1,2,3,4,5,6,7,8,9,10" for _ in range(400_000))
    decoding = threading.Event()
    finished = False
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while not finished:
            await anyio.sleep(0.005)
            ticks += decoding.is_set()  # counted only while the worker thread decodes

    def decode() -> Any:
        decoding.set()
        return CSVDeserializer().deserialize(io.BytesIO(data), "text/csv")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(tick)
        rows = await anyio.to_thread.run_sync(decode)
        seen, finished = ticks, True
    assert len(rows) == 400_000 and rows[0][9] == "10"
    assert seen >= 5, seen
