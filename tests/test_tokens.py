"""Continuation tokens: signed (HMAC-SHA256) and unsigned, and what a predictor accepts."""

from __future__ import annotations

import base64
import json

import pytest

from aiosagemaker import InferenceStatus, InvalidTokenError, WaiterConfig
from helpers import make_predictor
from s3_fault_proxy import S3FaultProxy

pytestmark = pytest.mark.anyio

KEY = "a-test-signing-key-0123456789"


def edited(token: str, **changes: str) -> str:
    """An unsigned token with fields changed (what a malicious caller can do)."""
    state = json.loads(base64.urlsafe_b64decode(token))
    state.update(changes)
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


async def test_signed_tokens_round_trip_and_refuse_tampering(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": "signed"})
        token = response.continuation_token(key=KEY)
        assert token.startswith("v2.")
        resumed = predictor.response_from_token(token, key=KEY)
        assert await resumed == "signed"
        body, mac = token[3:].split(".")
        state = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        state["output_path"] = "s3://someone-elses-bucket/secret.txt"
        forged_body = base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")
        with pytest.raises(InvalidTokenError, match="signature does not match"):
            predictor.response_from_token(f"v2.{forged_body}.{mac}", key=KEY)
        with pytest.raises(InvalidTokenError, match="signature does not match"):
            predictor.response_from_token(token, key="another-key-of-enough-length")
        with pytest.raises(InvalidTokenError, match="signed: pass the key"):
            predictor.response_from_token(token)
        with pytest.raises(InvalidTokenError, match="unsigned continuation token"):
            predictor.response_from_token(response.continuation_token(), key=KEY)


async def test_the_key_can_come_from_the_environment(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIOSAGEMAKER_TOKEN_KEY", KEY)
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": "env"})
        token = response.continuation_token()
        assert token.startswith("v2.")
        assert await predictor.response_from_token(token) == "env"


async def test_unsigned_tokens_outside_the_endpoints_prefixes_are_refused(
    aws_env: dict[str, str],
) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": "mine"})
        token = response.continuation_token()
        assert await predictor.response_from_token(token) == "mine"
        forged = edited(token, output_path="s3://someone-elses-bucket/secret.txt")
        with pytest.raises(InvalidTokenError, match="outside the result locations"):
            predictor.response_from_token(forged)
        assert predictor.response_from_token(forged, allow_foreign=True).output_path.startswith(
            "s3://someone-elses-bucket/"
        )
        with pytest.raises(InvalidTokenError, match="no valid 'output_path'"):
            predictor.response_from_token(edited(token, output_path=""))
        with pytest.raises(InvalidTokenError, match="not usable"):
            predictor.response_from_token(
                edited(token, output_path="http://x/y"), allow_foreign=True
            )
        with pytest.raises(ValueError, match="at least 16 bytes"):
            response.continuation_token(key="short")


async def test_a_response_reads_well(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": 1})
        assert str(response).startswith(f"InProgress inference {response.inference_id}: output ")
        await response
        assert str(response).startswith("Completed inference")
        page = response._repr_html_()
        assert "<table>" in page and response.output_path in page and "Completed" in page
    assert str(InferenceStatus.IN_PROGRESS) == "InProgress"


def unsigned(state: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"v": 1, **state}).encode()).decode()


async def test_a_fresh_predictor_refuses_unsigned_tokens_outside_the_endpoint_config(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    forged = unsigned({"endpoint_name": "scripted", "output_path": "s3://secrets/db-password.txt"})
    async with make_predictor() as fresh:  # no request answered: nothing learned yet
        response = fresh.response_from_token(forged)
        with pytest.raises(InvalidTokenError, match="outside the result locations"):
            await response.get_result()
        with pytest.raises(InvalidTokenError, match="outside the result locations"):
            await response.get_result(WaiterConfig(max_attempts=2, delay=0.01))
        assert fresh.response_from_token(forged, allow_foreign=True).output_path.endswith(
            "db-password.txt"
        )
    assert s3_proxy.count("GET", "/secrets/") == 0 and s3_proxy.count("GET", "db-password") == 0
    async with make_predictor(result_prefixes=["s3://secrets/"]) as configured:
        configured.response_from_token(forged)  # configured: accepted at once


async def test_prefixes_compare_parsed_normalised_keys(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": "mine"})
        token = response.continuation_token()
        assert await predictor.response_from_token(token) == "mine"
        head = response.output_path.rsplit("/", 1)[0]
        bucket = head.split("/")[2]
        for escape in (
            f"{head}/../../../secret.txt",
            f"{head}/./x.out",
            f"{head}//x.out",
            f"s3://{bucket}-other/{head.split('/', 3)[3]}/x.out",
        ):
            with pytest.raises(InvalidTokenError, match="unsigned token points at"):
                predictor.response_from_token(edited(token, output_path=escape))


@pytest.mark.parametrize("signed", [False, True])
async def test_hostile_tokens_are_refused_before_parsing(
    aws_env: dict[str, str], signed: bool
) -> None:
    nested = b"[" * 4096 + b"]" * 4096
    deep = ('{"v": 1, "a": ' + "[" * 1500 + "]" * 1500 + "}").encode()
    async with make_predictor() as predictor:
        key = KEY if signed else None
        for body in (nested, deep, b'{"v": 1, "endpoint_name": {"x": 1}}', b"[1]", b"\xff"):
            encoded = base64.urlsafe_b64encode(body).decode()
            token = f"v2.{encoded.rstrip('=')}.AAAA" if signed else encoded
            with pytest.raises(InvalidTokenError):
                predictor.response_from_token(token, key=key)
        with pytest.raises(InvalidTokenError, match="characters long"):
            predictor.response_from_token("A" * 100_000, key=key)
        with pytest.raises(InvalidTokenError, match="a str"):
            predictor.response_from_token(b"bytes", key=key)  # type: ignore[arg-type]


async def test_unsigned_tokens_are_refused_when_the_endpoint_config_cannot_be_read(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, s3_proxy: S3FaultProxy
) -> None:
    async with make_predictor() as predictor:
        token = (await predictor.predict_async({"output": "mine"})).continuation_token()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", "http://127.0.0.1:9")  # nothing listens
    async with make_predictor(client_config=_no_retries()) as fresh:
        response = fresh.response_from_token(token)
        before = s3_proxy.count("GET")
        with pytest.raises(InvalidTokenError, match="cannot be checked"):
            await response
        assert s3_proxy.count("GET") == before
        assert await fresh.response_from_token(token, allow_foreign=True) == "mine"


def _no_retries() -> object:
    from aiobotocore.config import AioConfig

    return AioConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2)
