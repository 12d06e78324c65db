"""AsyncInferenceResponse: checks, waits, caching, failures, faults injected at the S3 server."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from aiosagemaker import (
    AsyncInferenceModelError,
    AsyncInferenceResponse,
    BytesDeserializer,
    InferenceStatus,
    ObjectNotExistedError,
    PollingTimeoutError,
    ResultDeserializationError,
    UnexpectedClientError,
    WaiterConfig,
)
from aiosagemaker._waiting._schedule import FINAL_CHECK_GRACE
from conftest import BUCKET
from helpers import FAST, key_of, make_predictor, raw
from s3_fault_proxy import Fault, S3FaultProxy

pytestmark = pytest.mark.anyio


def gets(proxy: S3FaultProxy, uri: str | None) -> int:
    assert uri is not None
    return proxy.count("GET", "/" + uri.removeprefix("s3://"))


def status_of(response: AsyncInferenceResponse) -> InferenceStatus:
    """Read the status through a call, so the type checker does not narrow it across awaits."""
    return response.status


async def test_single_check_before_and_after_completion(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"sleep": 1, "output": "later"})
        with pytest.raises(ObjectNotExistedError, match="Object not exist at s3://") as caught:
            await response.get_result()
        assert caught.value.output_path == response.output_path
        assert status_of(response) is InferenceStatus.IN_PROGRESS
        assert not response.done()
        assert await response == "later"
        assert await response.get_result() == "later"
        assert status_of(response) is InferenceStatus.COMPLETED
        assert response.done()


async def test_result_is_fetched_once_and_cached(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": {"big": [1, 2, 3]}})
        first = await response
        count = gets(s3_proxy, response.output_path)
        assert await response is first
        assert await response.get_result(WaiterConfig(1, 1)) is first
        assert gets(s3_proxy, response.output_path) == count


async def test_one_get_per_location_per_attempt_and_no_head(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"sleep": 0.5, "output": 1})
        assert await response.get_result(WaiterConfig(max_attempts=500, delay=0.05)) == 1
    output_gets = gets(s3_proxy, response.output_path)
    assert output_gets >= 2
    # every check looks at both (the two prefixes are checked as groups of their own, so
    # on a loaded machine one may run a check ahead); exact counts: the fake-time tests
    assert output_gets - 1 <= gets(s3_proxy, response.failure_path) <= output_gets + 1
    assert s3_proxy.count("HEAD") == 0


async def test_the_last_attempt_always_looks_for_a_failure(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy, s3: Any
) -> None:
    await s3.put_object(Bucket=BUCKET, Key="fail/last-attempt.out", Body=b"bad input")
    async with make_predictor(failure_check_every=3) as predictor:
        response = AsyncInferenceResponse(
            predictor, f"s3://{BUCKET}/out/never.out", f"s3://{BUCKET}/fail/last-attempt.out"
        )
        # attempts 1 and 2 are not regular failure probes; the last attempt looks anyway
        with pytest.raises(AsyncInferenceModelError, match="bad input"):
            await response.get_result(WaiterConfig(max_attempts=2, delay=0.05))
    # bounds only (a late check may serve several attempts); the exact counts are pinned on
    # virtual time in test_engine_fake_time.py
    assert 1 <= gets(s3_proxy, response.output_path) <= 3
    assert gets(s3_proxy, response.failure_path) >= 1


async def test_failure_probes_can_be_thinned_out(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    async with make_predictor(failure_check_every=3) as predictor:
        response = await predictor.predict_async({"sleep": 30})
        with pytest.raises(PollingTimeoutError):
            await response.get_result(WaiterConfig(max_attempts=7, delay=0.02))
    # bounds only: on a loaded machine one late check serves several attempts; exactly 7 and
    # 3 (attempts 3, 6 and the last) are pinned on virtual time in test_engine_fake_time.py
    output_gets = gets(s3_proxy, response.output_path)
    assert 2 <= output_gets <= 7
    assert 1 <= gets(s3_proxy, response.failure_path) <= 3


async def test_model_failure_is_remembered(aws_env: dict[str, str], s3_proxy: S3FaultProxy) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"fail": "input had 3 columns, expected 4"})
        with pytest.raises(AsyncInferenceModelError, match="expected 4") as caught:
            await response
        assert caught.value.failure_path == response.failure_path
        assert caught.value.inference_id == response.inference_id
        assert response.status is InferenceStatus.FAILED
        count = gets(s3_proxy, response.failure_path)
        with pytest.raises(AsyncInferenceModelError):
            await response.get_result()
        assert gets(s3_proxy, response.failure_path) == count


async def test_failure_text_never_goes_through_the_success_deserializer(
    aws_env: dict[str, str],
) -> None:
    # JSONDeserializer would choke on plain text; the failure file is read as text instead.
    async with make_predictor() as predictor:
        with pytest.raises(AsyncInferenceModelError, match="plain text, not JSON"):
            await predictor.predict({"fail": "plain text, not JSON"})


async def test_timeout_counts_attempts_and_reports_time_waited(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"sleep": 30})
        with pytest.raises(PollingTimeoutError) as caught:
            await response.get_result(WaiterConfig(max_attempts=4, delay=0.1))
    error = caught.value
    assert error.attempts == 4
    assert error.seconds >= 0.3
    assert f"after polling for {error.seconds} seconds" in str(error)
    assert "ApproximateBacklogSizePerInstance" in str(error)
    # a late check may serve several attempts: exact counts are pinned on virtual time
    # (test_engine_fake_time.py::test_one_get_per_location_per_attempt)
    assert 2 <= gets(s3_proxy, response.output_path) <= 4
    assert isinstance(error, TimeoutError)


async def test_overall_timeout_ends_with_a_final_check(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"sleep": 30})
        with pytest.raises(PollingTimeoutError) as caught:
            await response.get_result(WaiterConfig(max_attempts=None, delay=0.1, timeout=0.45))
    assert caught.value.seconds >= 0.45
    assert caught.value.attempts >= 3


async def test_transient_errors_are_retried_not_raised(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    no_botocore_retries = Config(retries={"max_attempts": 1, "mode": "standard"})
    async with make_predictor(client_config=no_botocore_retries) as predictor:
        response = await predictor.predict_async({"output": "survived"})
        output_key = response.output_path.removeprefix("s3://")
        s3_proxy.add(Fault("GET", output_key, status=503, code="SlowDown", times=2))
        s3_proxy.add(Fault("GET", output_key, reset=True, times=1))
        assert await response == "survived"


async def test_persistent_transient_errors_end_the_wait_at_its_budget(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    no_botocore_retries = Config(retries={"max_attempts": 1, "mode": "standard"})
    async with make_predictor(client_config=no_botocore_retries, transient_retries=2) as p:
        response = await p.predict_async({"output": 1})
        s3_proxy.add(
            Fault(
                "GET", response.output_path.removeprefix("s3://"), status=500, code="InternalError"
            )
        )
        with pytest.raises(PollingTimeoutError, match="S3 checks were failing") as caught:
            await response.get_result(WaiterConfig(max_attempts=None, delay=0.05, timeout=1))
        assert isinstance(caught.value.__cause__, ClientError)
        assert caught.value.seconds < 1 + FINAL_CHECK_GRACE + 5  # wide slack: a loaded machine
        # the single check keeps the bounded retries of one request
        with pytest.raises(UnexpectedClientError, match="kept failing after 3 attempts"):
            await response.get_result()


async def test_access_denied_is_raised_at_once_with_a_hint(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"sleep": 5})
        s3_proxy.add(
            Fault(
                "GET", response.output_path.removeprefix("s3://"), status=403, code="AccessDenied"
            )
        )
        with pytest.raises(UnexpectedClientError, match="s3:ListBucket") as caught:
            await response.get_result(WaiterConfig(max_attempts=100, delay=0.05))
    assert caught.value.code == "AccessDenied"
    assert not isinstance(caught.value, PollingTimeoutError)
    assert gets(s3_proxy, response.output_path) == 1


async def test_missing_output_bucket(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        response = AsyncInferenceResponse(
            predictor, "s3://bucket-that-is-not-there/out/x.out", None, "id-1"
        )
        with pytest.raises(UnexpectedClientError, match="does not exist") as caught:
            await response.get_result(FAST)
    assert caught.value.code == "NoSuchBucket"
    assert caught.value.inference_id == "id-1"


async def test_undecodable_result_stays_in_s3(aws_env: dict[str, str], s3: Any) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async(raw(b"\x00 not json", "application/json"))
        with pytest.raises(ResultDeserializationError) as caught:
            await response
    error = caught.value
    assert error.output_path == response.output_path
    assert response.output_path in str(error)
    assert "JSONDeserializer" in str(error) and "application/json" in str(error)
    assert error.__cause__ is not None
    stored = await s3.get_object(
        Bucket=response.output_path.split("/")[2], Key=key_of(response.output_path)
    )
    assert await stored["Body"].read() == b"\x00 not json"
    # the same result, fetched again with a deserializer that can read it
    async with make_predictor(deserializer=BytesDeserializer()) as raw_predictor:
        again = raw_predictor.response_from_token(response.continuation_token())
        assert await again == b"\x00 not json"


class Exploding:
    ACCEPT = "application/json"

    def deserialize(self, stream: Any, content_type: str) -> Any:
        raise RuntimeError("deserializer bug")


async def test_deserializer_raising(aws_env: dict[str, str]) -> None:
    async with make_predictor(deserializer=Exploding()) as predictor:
        with pytest.raises(ResultDeserializationError, match="RuntimeError: deserializer bug"):
            await predictor.predict({"output": 1})


async def test_deserializer_gets_a_stream_and_the_content_type(aws_env: dict[str, str]) -> None:
    seen: list[tuple[bytes, str]] = []

    class Recording:
        ACCEPT = "*/*"

        def deserialize(self, stream: io.BytesIO, content_type: str) -> str:
            seen.append((stream.read(), content_type))
            stream.close()
            return "done"

    async with make_predictor(deserializer=Recording()) as predictor:
        assert await predictor.predict(raw(b"a,b\n1,2\n", "text/csv")) == "done"
    assert seen == [(b"a,b\n1,2\n", "text/csv")]


async def test_malformed_failure_file(aws_env: dict[str, str], s3: Any) -> None:
    await s3.put_object(Bucket=BUCKET, Key="fail/bad-error.out", Body=b"\xff\xfe oops \x80")
    async with make_predictor() as predictor:
        response = AsyncInferenceResponse(
            predictor, f"s3://{BUCKET}/out/never.out", f"s3://{BUCKET}/fail/bad-error.out"
        )
        with pytest.raises(AsyncInferenceModelError, match="not UTF-8 text") as caught:
            await response.get_result(FAST)
    assert "oops" in str(caught.value)
    await s3.put_object(Bucket=BUCKET, Key="fail/empty-error.out", Body=b"")
    async with make_predictor() as predictor:
        response = AsyncInferenceResponse(
            predictor, f"s3://{BUCKET}/out/never.out", f"s3://{BUCKET}/fail/empty-error.out"
        )
        with pytest.raises(AsyncInferenceModelError, match="is empty"):
            await response.get_result()


async def test_output_wins_when_both_exist(aws_env: dict[str, str], s3: Any) -> None:
    await s3.put_object(
        Bucket=BUCKET, Key="both/out.out", Body=b'"the result"', ContentType="application/json"
    )
    await s3.put_object(Bucket=BUCKET, Key="both/err.out", Body=b"the error")
    async with make_predictor() as predictor:
        response = AsyncInferenceResponse(
            predictor, f"s3://{BUCKET}/both/out.out", f"s3://{BUCKET}/both/err.out"
        )
        assert await response.get_result() == "the result"


async def test_content_type_defaults_to_octet_stream(aws_env: dict[str, str], s3: Any) -> None:
    # moto stores no ContentType for this object; the deserializer still gets a type
    await s3.put_object(Bucket=BUCKET, Key="plain/x.out", Body=b"abc")
    seen: list[str] = []

    class Types:
        ACCEPT = "*/*"

        def deserialize(self, stream: Any, content_type: str) -> bytes:
            seen.append(content_type)
            return bytes(stream.read())

    async with make_predictor(deserializer=Types()) as predictor:
        response = AsyncInferenceResponse(predictor, f"s3://{BUCKET}/plain/x.out", None)
        assert await response.get_result() == b"abc"
    assert seen == ["binary/octet-stream"] or seen == ["application/octet-stream"], seen


async def test_continuation_token_round_trip(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": "resumed"})
        token = response.continuation_token()
    async with make_predictor() as other:
        resumed = other.response_from_token(token)
        assert (resumed.output_path, resumed.failure_path, resumed.inference_id) == (
            response.output_path,
            response.failure_path,
            response.inference_id,
        )
        assert await resumed == "resumed"
        with pytest.raises(ValueError, match="not an aiosagemaker continuation token"):
            other.response_from_token("%%%")
        with pytest.raises(ValueError, match="version"):
            other.response_from_token("eyJ2IjogOX0=")  # {"v": 9}
    async with make_predictor("demo") as wrong:
        with pytest.raises(ValueError, match="belongs to endpoint 'scripted'"):
            wrong.response_from_token(token)


async def test_wrong_waiter_config_object(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": 1})
        for bad in ({"delay": 1}, 5, "WaiterConfig()"):
            with pytest.raises(ValueError, match="waiter_config should be a WaiterConfig object"):
                await response.get_result(bad)  # type: ignore[arg-type]


async def test_download_streams_large_results_to_a_file(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    blob = bytes(range(256)) * 12_000  # ~3 MB
    async with make_predictor() as predictor:
        response = await predictor.predict_async(raw(blob, "application/x-blob"))
        target = tmp_path / "result.bin"
        content_type = await response.download(target, FAST, chunk_size=64 * 1024)
    assert content_type == "application/x-blob"
    assert await anyio.Path(target).read_bytes() == blob


async def test_download_raises_model_errors(aws_env: dict[str, str], tmp_path: Path) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"fail": "no file for you"})
        with pytest.raises(AsyncInferenceModelError, match="no file for you"):
            await response.download(tmp_path / "x", FAST)
    assert not await anyio.Path(tmp_path / "x").exists()


async def test_repr_shows_status_and_location(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": json.dumps([1])})
        await response
    assert "Completed" in repr(response) and response.output_path in repr(response)


async def test_watch_is_public_calls_back_once_and_cancels(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        quick = await predictor.predict_async({"output": "done"})
        slow = await predictor.predict_async({"sleep": 30, "output": "late"})
        settled = anyio.Event()
        calls: list[str] = []

        def on_settled() -> None:
            calls.append("quick")
            settled.set()

        watch = await quick.watch(FAST, on_settled)
        assert watch is not None
        with anyio.fail_after(60):
            await settled.wait()
        assert calls == ["quick"] and quick.result() == "done"
        assert await quick.watch(FAST, on_settled) is None  # done already: no call
        slow_watch = await slow.watch(None, lambda: calls.append("slow"))
        assert slow_watch is not None
        slow_watch.cancel()
        slow_watch.cancel()  # idempotent
        assert calls == ["quick"] and not slow.done()
