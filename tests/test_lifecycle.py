"""Lifecycle: close with waits pending, never-sent requests, batches whose inputs raise,
download targets, done callbacks and ``wait`` on responses already done.

Against the emulator (with moto behind it); the scripted model's gates keep inferences
pending for as long as a test needs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import botocore.loaders
import pytest

from aiosagemaker import (
    AsyncInferenceError,
    AsyncInferenceResponse,
    InvalidRequestError,
    PredictorClosedError,
    RequestNotSentError,
    SubmissionUncertainError,
    WaiterConfig,
    as_completed,
    wait,
)
from conftest import GATES
from helpers import make_predictor, until
from s3_fault_proxy import S3FaultProxy

pytestmark = pytest.mark.anyio

INVOKE = "/async-invocations"
LONG = WaiterConfig(max_attempts=None, delay=0.05, max_delay=0.5, timeout=900)
"""A wait that would last 15 minutes if nothing ended it."""
_MODEL = botocore.loaders.Loader().load_service_model("sagemaker-runtime", "service-2")
FILENAME = "Filename" in _MODEL["shapes"]["InvokeEndpointAsyncInput"]["members"]


def invocations(proxy: S3FaultProxy) -> int:
    return proxy.count("POST", INVOKE)


# -- close() ends every pending wait at once ----------------------------------------------


async def test_close_ends_every_pending_wait_with_predictor_closed_error(
    aws_env: dict[str, str], gate: Callable[[], str]
) -> None:
    name = gate()
    errors: list[BaseException] = []
    predictor = make_predictor(waiter_config=LONG)
    async with predictor:
        responses = [await predictor.predict_async({"gate": name, "output": i}) for i in range(3)]
        watched = [await predictor.predict_async({"gate": name, "output": i}) for i in range(2)]

        async def waits_on(response: AsyncInferenceResponse) -> None:
            try:
                await response.get_result(LONG)
            except Exception as error:
                errors.append(error)

        completed: list[AsyncInferenceResponse] = []

        async def iterates() -> None:
            async for response in as_completed(watched):
                completed.append(response)

        with anyio.fail_after(60):  # not the waits' 15 minutes
            async with anyio.create_task_group() as tasks:
                for response in responses:
                    tasks.start_soon(waits_on, response)
                tasks.start_soon(iterates)
                await until(lambda: len(_pending(predictor)) == 5)
                await predictor.close()
    assert len(errors) == 3
    assert all(isinstance(error, PredictorClosedError) for error in errors), errors
    assert isinstance(errors[0], AsyncInferenceError) and isinstance(errors[0], RuntimeError)
    assert errors[0].output_path in {r.output_path for r in responses}
    assert "closed" in str(errors[0])
    assert sorted(map(id, completed)) == sorted(map(id, watched))
    assert all(isinstance(r.exception(), PredictorClosedError) for r in watched)
    GATES[name].open()
    async with predictor:  # reopened: the inferences went on and can be awaited again
        assert await responses[0].get_result(LONG) == 0


def _pending(predictor: Any) -> set[Any]:
    engine = predictor._engine
    return set() if engine is None else engine._pending


# -- requests that never left the client ------------------------------------------------------


async def test_newlines_in_inference_id_or_headers_are_invalid_not_uncertain(
    aws_env: dict[str, str], runtime_proxy: S3FaultProxy
) -> None:
    async with make_predictor() as predictor:
        for kwargs in (
            {"inference_id": "id\nX-Injected: 1"},
            {"inference_id": "x" * 65},
            {"initial_args": {"CustomAttributes": "a\r\nb"}},
            {"initial_args": {"CustomAttributes": "x" * 1025}},
            {"initial_args": {"Accept": "application/json\n"}},
        ):
            with pytest.raises(InvalidRequestError, match="not sent") as caught:
                await predictor.predict_async({"output": 1}, **kwargs)
            assert isinstance(caught.value, RequestNotSentError)
            assert isinstance(caught.value, ValueError)
            assert not isinstance(caught.value, SubmissionUncertainError)
        if FILENAME:  # not validated up front: refused by the HTTP layer, still never sent
            with pytest.raises(InvalidRequestError, match="HTTP header") as header:
                await predictor.predict_async({"output": 1}, initial_args={"Filename": "a\nb"})
            assert header.value.__cause__ is not None
        with pytest.raises(InvalidRequestError, match="invalid arguments"):
            await predictor.predict_async({"output": 1}, initial_args={"NoSuchField": 1})
    assert invocations(runtime_proxy) == 0


async def test_missing_credentials_are_not_uncertain(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, runtime_proxy: S3FaultProxy
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no IMDS lookups, loopback only
    async with make_predictor() as predictor:
        with pytest.raises(RequestNotSentError, match="no AWS credentials") as caught:
            await predictor.predict_async(input_path="s3://aiosagemaker-tests/in.json")
    assert not isinstance(caught.value, SubmissionUncertainError)
    assert caught.value.__cause__ is not None
    assert invocations(runtime_proxy) == 0


# -- map() over inputs that raise ---------------------------------------------------------------


class InputsBroke(Exception):
    pass


def breaking_inputs(good: int) -> Iterator[dict[str, Any]]:
    for index in range(good):
        yield {"output": index}
    raise InputsBroke("row 3 is corrupt")


async def test_map_raises_the_inputs_own_error(aws_env: dict[str, str]) -> None:
    seen: list[Any] = []

    async def consume(predictor: Any) -> None:
        async with predictor.map(breaking_inputs(3), concurrency=2) as outcomes:
            async for outcome in outcomes:
                seen.append(outcome)

    async with make_predictor() as predictor:
        with pytest.raises(InputsBroke, match="row 3 is corrupt"):  # not an ExceptionGroup
            await consume(predictor)
    assert len(seen) <= 3


def test_map_with_raising_inputs_leaves_no_unclosed_stream(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        "import asyncio, gc, sys\n"
        f"sys.path[:0] = [{str(Path(__file__).parent)!r}]\n"
        "from helpers import make_predictor\n"
        "def inputs():\n"
        "    yield {'output': 1}\n"
        "    raise KeyError('broken input')\n"
        "async def main():\n"
        "    async with make_predictor() as predictor:\n"
        "        try:\n"
        "            async for _ in predictor.map(inputs(), concurrency=2):\n"
        "                pass\n"
        "        except KeyError:\n"
        "            print('raised KeyError')\n"
        "    gc.collect()\n"
        "asyncio.run(main())\n"
        "gc.collect()\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **aws_env},
    )
    assert "raised KeyError" in done.stdout, done.stderr
    assert "ResourceWarning" not in done.stderr, done.stderr


# -- download() checks its target before waiting ----------------------------------------------


async def test_download_to_a_missing_directory_fails_before_waiting(
    aws_env: dict[str, str], tmp_path: Path, s3_proxy: S3FaultProxy, gate: Callable[[], str]
) -> None:
    async with make_predictor(waiter_config=LONG) as predictor:
        response = await predictor.predict_async({"gate": gate(), "output": 1})
        before = s3_proxy.count("GET") + s3_proxy.count("HEAD")
        with anyio.fail_after(30):
            with pytest.raises(FileNotFoundError, match="does not exist"):
                await response.download(tmp_path / "missing" / "result.json", LONG)
            await anyio.Path(tmp_path / "file").write_text("")
            with pytest.raises(NotADirectoryError):
                await response.download(tmp_path / "file" / "result.json", LONG)
            with pytest.raises(IsADirectoryError):
                await response.download(tmp_path, LONG)
        assert s3_proxy.count("GET") + s3_proxy.count("HEAD") == before  # no wait started


# -- done callbacks -------------------------------------------------------------------------------


async def test_done_callbacks_sync_and_async_once_errors_logged(
    aws_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[str, Any]] = []
    finished = anyio.Event()

    def sync_callback(response: AsyncInferenceResponse) -> None:
        calls.append(("sync", response.result()))

    async def async_callback(response: AsyncInferenceResponse) -> None:
        await anyio.lowlevel.checkpoint()
        calls.append(("async", response.result()))
        finished.set()

    def broken(response: AsyncInferenceResponse) -> None:
        raise RuntimeError("callback bug")

    caplog.set_level(logging.ERROR, logger="aiosagemaker")
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": "ok"})
        response.add_done_callback(sync_callback)
        response.add_done_callback(async_callback)
        response.add_done_callback(broken)
        with anyio.fail_after(30):
            await finished.wait()  # nobody awaited the response: the callbacks' watch found it
        assert response.done() and response.result() == "ok"
        assert await response == "ok"  # a later wait does not call them again
        late = anyio.Event()
        response.add_done_callback(lambda r: late.set())  # already done: called soon
        with anyio.fail_after(30):
            await late.wait()
        with pytest.raises(TypeError, match="callable"):
            response.add_done_callback("not callable")  # type: ignore[arg-type]
    assert sorted(calls) == [("async", "ok"), ("sync", "ok")]
    assert any("callback bug" in r.getMessage() or r.exc_info for r in caplog.records)
    assert any(
        r.exc_info is not None and "callback bug" in str(r.exc_info[1]) for r in caplog.records
    )


async def test_done_callbacks_see_model_failures_and_close(
    aws_env: dict[str, str], gate: Callable[[], str]
) -> None:
    seen: dict[str, BaseException | None] = {}
    async with make_predictor(waiter_config=LONG) as predictor:
        failing = await predictor.predict_async({"fail": "bad row"})
        settled = anyio.Event()

        def on_failure(response: AsyncInferenceResponse) -> None:
            seen["failing"] = response.exception()
            settled.set()

        failing.add_done_callback(on_failure)
        with anyio.fail_after(30):
            await settled.wait()
        pending = await predictor.predict_async({"gate": gate(), "output": 1})
        cancelled = asyncio.Event()

        async def on_close(response: AsyncInferenceResponse) -> None:
            seen["pending"] = response.exception()
            try:
                await asyncio.Event().wait()  # never ends: close must cancel it, not hang
            except asyncio.CancelledError:
                cancelled.set()
                raise

        pending.add_done_callback(on_close)
        await until(lambda: len(_pending(predictor)) == 1)
        import aiosagemaker._callbacks as callbacks

        grace, callbacks.CLOSE_GRACE = callbacks.CLOSE_GRACE, 0.5
        try:
            with anyio.fail_after(60):
                await predictor.close()
        finally:
            callbacks.CLOSE_GRACE = grace
    assert "bad row" in str(seen["failing"])
    assert isinstance(seen["pending"], PredictorClosedError)
    assert cancelled.is_set()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "aiosagemaker-callback"]


# -- wait() on responses already done -----------------------------------------------------------


async def test_wait_first_completed_returns_every_response_already_done(
    aws_env: dict[str, str],
) -> None:
    async with make_predictor() as predictor:
        responses = [await predictor.predict_async({"output": i}) for i in range(10)]
        for response in responses:
            await response
        done, pending = await wait(responses, return_when="FIRST_COMPLETED")
        assert (len(done), len(pending)) == (10, 0)  # as asyncio.wait
