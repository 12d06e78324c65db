"""Inline payloads (``Body``) and the newer InvokeEndpointAsync fields, on both botocore lines.

botocore 1.43 (aiobotocore 3.x) knows ``Body``, ``Filename`` and ``S3OutputPathExtension``;
botocore 1.40 (aioboto3 15.x) does not, and asking for them gives a typed error. Each nox
line runs the branch its botocore takes.
"""

from __future__ import annotations

import botocore.loaders
import pytest

from aiosagemaker import StringSerializer, UnsupportedFeatureError
from aiosagemaker._limits import INLINE_BODY_MAX_BYTES
from helpers import make_predictor
from s3_fault_proxy import S3FaultProxy

pytestmark = pytest.mark.anyio


def botocore_knows(field: str) -> bool:
    model = botocore.loaders.Loader().load_service_model("sagemaker-runtime", "service-2")
    return field in model["shapes"]["InvokeEndpointAsyncInput"]["members"]


INLINE = botocore_knows("Body")
NEW_FIELDS = botocore_knows("Filename")


@pytest.mark.skipif(not INLINE, reason="this botocore has no inline Body (tested on 1.40 below)")
async def test_inline_body_skips_the_upload(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy, runtime_proxy: S3FaultProxy
) -> None:
    async with make_predictor(inline=True) as predictor:
        assert await predictor.predict({"output": "inline!"}) == "inline!"
    assert s3_proxy.count("PUT") == 0
    (headers,) = [
        h
        for (m, _), h in zip(runtime_proxy.requests, runtime_proxy.headers, strict=True)
        if m == "POST"
    ]
    lowered = {k.lower(): v for k, v in headers.items()}
    assert "x-amzn-sagemaker-inputlocation" not in lowered
    assert int(lowered["content-length"]) == len(b'{"output": "inline!"}')


@pytest.mark.skipif(not INLINE, reason="this botocore has no inline Body")
async def test_inline_limits(aws_env: dict[str, str], s3_proxy: S3FaultProxy) -> None:
    big = "x" * (INLINE_BODY_MAX_BYTES + 1)
    async with make_predictor(inline=True, serializer=StringSerializer()) as predictor:
        with pytest.raises(ValueError, match="at most 128000 bytes inline"):
            await predictor.predict_async(big)
    async with make_predictor(inline="auto", serializer=StringSerializer()) as predictor:
        exact = '"' + "y" * (INLINE_BODY_MAX_BYTES - 2) + '"'
        assert len(exact.encode()) == INLINE_BODY_MAX_BYTES
        await predictor.predict_async(exact)
        assert s3_proxy.count("PUT") == 0
        await predictor.predict_async(big)
        assert s3_proxy.count("PUT") == 1


@pytest.mark.skipif(INLINE, reason="this botocore supports inline Body (tested above)")
async def test_inline_needs_a_newer_botocore(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    async with make_predictor(inline=True) as predictor:
        with pytest.raises(UnsupportedFeatureError, match=r"aiobotocore>=3"):
            await predictor.predict_async({"output": 1})
    async with make_predictor(inline="auto") as predictor:
        assert await predictor.predict({"output": "uploaded"}) == "uploaded"
    assert s3_proxy.count("PUT") == 1


@pytest.mark.skipif(not NEW_FIELDS, reason="this botocore lacks Filename (tested below)")
async def test_filename_and_output_path_extension(aws_env: dict[str, str]) -> None:
    args = {"Filename": "result.json", "S3OutputPathExtension": "batch-7"}
    async with make_predictor() as predictor:
        response = await predictor.predict_async({"output": 5}, initial_args=args)
        assert response.output_path.endswith("/batch-7/result.json")
        assert await response == 5


@pytest.mark.skipif(NEW_FIELDS, reason="this botocore knows Filename (tested above)")
async def test_new_fields_need_a_newer_botocore(aws_env: dict[str, str]) -> None:
    async with make_predictor() as predictor:
        for field in ("Filename", "S3OutputPathExtension"):
            with pytest.raises(UnsupportedFeatureError, match=f"{field}.*botocore >= 1.42.54"):
                await predictor.predict_async({"output": 1}, initial_args={field: "x"})
