"""Sessions: the default chain, an aiobotocore AioSession, an aioboto3 Session."""

from __future__ import annotations

import pytest
from aiobotocore.session import AioSession
from botocore.config import Config

from aiosagemaker._clients import DEFAULT_MAX_POOL_CONNECTIONS, ClientFactory
from helpers import make_predictor

pytestmark = pytest.mark.anyio


async def test_aiobotocore_session(aws_env: dict[str, str]) -> None:
    async with make_predictor(session=AioSession()) as predictor:
        assert await predictor.predict({"output": "aiobotocore"}) == "aiobotocore"


async def test_aioboto3_session(aws_env: dict[str, str]) -> None:
    aioboto3 = pytest.importorskip("aioboto3", reason="the aioboto3 nox line installs it")
    async with make_predictor(session=aioboto3.Session()) as predictor:
        assert await predictor.predict({"output": "aioboto3"}) == "aioboto3"


def test_client_config_is_merged_over_the_defaults() -> None:
    assert ClientFactory().max_pool_connections == DEFAULT_MAX_POOL_CONNECTIONS
    factory = ClientFactory(client_config=Config(max_pool_connections=7, read_timeout=5))
    assert factory.max_pool_connections == 7
    assert factory.config.read_timeout == 5
