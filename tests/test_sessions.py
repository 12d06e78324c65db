"""Sessions: the default chain, an aiobotocore AioSession, an aioboto3 Session."""

from __future__ import annotations

import io
from typing import Any

import anyio
import pytest
from aiobotocore.session import AioSession
from botocore.config import Config

from aiosagemaker import BytesDeserializer, IdentitySerializer
from aiosagemaker._clients import DEFAULT_MAX_POOL_CONNECTIONS, ClientFactory
from aiosagemaker._s3_transport import S3Transport
from helpers import FAST, make_predictor
from s3_fault_proxy import S3FaultProxy

pytestmark = pytest.mark.anyio


async def test_aiobotocore_session(aws_env: dict[str, str]) -> None:
    async with make_predictor(session=AioSession()) as predictor:
        assert await predictor.predict({"output": "aiobotocore"}) == "aiobotocore"


async def test_aioboto3_session(aws_env: dict[str, str]) -> None:
    aioboto3 = pytest.importorskip("aioboto3", reason="the aioboto3 nox line installs it")
    session = await anyio.to_thread.run_sync(aioboto3.Session)  # it reads the config files
    async with make_predictor(session=session) as predictor:
        assert await predictor.predict({"output": "aioboto3"}) == "aioboto3"


def test_client_config_is_merged_over_the_defaults() -> None:
    assert ClientFactory().max_pool_connections == DEFAULT_MAX_POOL_CONNECTIONS
    factory = ClientFactory(client_config=Config(max_pool_connections=7, read_timeout=5))
    assert factory.max_pool_connections == 7
    assert factory.config.read_timeout == 5


def test_pool_can_be_sized_to_the_concurrency() -> None:
    assert ClientFactory(max_pool_connections=500).max_pool_connections == 500
    explicit = Config(max_pool_connections=7)
    assert ClientFactory(client_config=explicit, max_pool_connections=500).max_pool_connections == 7
    with pytest.raises(ValueError, match="positive int"):
        ClientFactory(max_pool_connections=0)


async def test_large_file_objects_use_aioboto3_multipart_upload(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    aioboto3 = pytest.importorskip("aioboto3", reason="the aioboto3 nox line installs it")
    payload = io.BytesIO(b"x" * (9 * 1024 * 1024))  # above the 8 MiB multipart threshold
    session = await anyio.to_thread.run_sync(aioboto3.Session)  # it reads the config files
    async with make_predictor(session=session, serializer=IdentitySerializer()) as p:
        await p.predict_async(payload)
    assert s3_proxy.count("POST") == 2  # CreateMultipartUpload + CompleteMultipartUpload
    assert s3_proxy.count("PUT") == 2  # two parts


async def test_file_objects_are_one_put_without_aioboto3(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    payload = io.BytesIO(b"y" * 1024)
    async with make_predictor(
        serializer=IdentitySerializer(), deserializer=BytesDeserializer()
    ) as predictor:
        response = await predictor.predict_async(payload)
        assert await response.get_result(FAST) == b"y" * 1024
    assert s3_proxy.count("PUT") == 1
    assert s3_proxy.count("POST") == 0


def test_max_concurrency_sizes_the_pool_unless_the_config_does() -> None:
    assert make_predictor(max_concurrency=200)._factory.max_pool_connections == 200
    sized = make_predictor(max_concurrency=200, client_config=Config(max_pool_connections=20))
    assert sized._factory.max_pool_connections == 20


async def test_the_s3_pool_has_room_for_detection_beside_uploads(aws_env: dict[str, str]) -> None:
    async with make_predictor(max_concurrency=40) as predictor:
        await predictor._open()
        transport = predictor._transport
        assert isinstance(transport, S3Transport)  # the default transport
        pool = transport.client.meta.config.max_pool_connections
        detection = int(transport.detection_limiter.total_tokens)
        assert pool == int(transport.limiter.total_tokens) + detection == 40 + 10


def test_fast_timestamps_match_botocore() -> None:
    import botocore.utils

    from aiosagemaker._clients import parse_timestamp

    for text in ("2026-01-01T00:00:00.000Z", "2026-12-02T15:16:17.123456Z",
                 "Wed, 02 Dec 2026 15:16:17 GMT", "1700000000"):  # fmt: skip
        assert parse_timestamp(text) == botocore.utils.parse_timestamp(text), text


@pytest.mark.anyio
async def test_only_the_librarys_own_s3_client_gets_fast_timestamps(
    aws_env: dict[str, str],
) -> None:
    from aiobotocore.session import get_session

    from aiosagemaker._clients import parse_timestamp
    from helpers import make_predictor

    session = get_session()
    async with make_predictor(session=session) as predictor, session.create_client("s3") as own:
        assert predictor._transport is not None
        ours = predictor._transport.client._endpoint._response_parser_factory
        assert ours._defaults["timestamp_parser"] is parse_timestamp
        theirs = own._endpoint._response_parser_factory
        assert theirs._defaults.get("timestamp_parser") is not parse_timestamp
        assert await predictor.predict({"output": "ok"}) == "ok"


def test_lean_listing_reads_pages_with_and_without_s3s_namespace() -> None:
    from aiosagemaker._clients import LISTED_SIZES, _lean_listing

    items = (
        "<Contents><Key>k/a%26b</Key><Size>3</Size></Contents><Contents><Key>k/c</Key></Contents>"
    )
    for namespace in (' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"', ""):
        body = (
            f"<ListBucketResult{namespace}><IsTruncated>true</IsTruncated>"
            f"<NextContinuationToken>t</NextContinuationToken><EncodingType>url</EncodingType>"
            f"{items}</ListBucketResult>"
        ).encode()
        response: dict[str, Any] = {"status_code": 200, "body": body}
        custom: dict[str, Any] = {}
        _lean_listing(response, custom)
        assert custom[LISTED_SIZES] == {"k/a&b": 3, "k/c": 0}
        assert b"Contents" not in response["body"] and b"NextContinuationToken" in response["body"]
    for untouched in (b"<Error><Code>SlowDown</Code></Error>", b"not xml"):
        response = {"status_code": 200, "body": untouched}
        custom = {}
        _lean_listing(response, custom)
        assert custom == {} and response["body"] == untouched  # left to botocore
