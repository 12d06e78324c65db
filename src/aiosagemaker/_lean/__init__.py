"""The lean transport: the four hot calls on aiohttp, signed by botocore, the rest on botocore.

See :func:`open_lean_clients`.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from ._http import open_session
from ._runtime import LeanRuntime
from ._s3 import LeanS3Client

__all__ = ["LeanRuntime", "LeanS3Client", "open_lean_clients"]


async def open_lean_clients(
    s3: Any,
    runtime: Any,
    stack: AsyncExitStack,
    *,
    s3_connections: int,
    runtime_connections: int,
    expected_bucket_owner: str | None,
) -> tuple[Any, Any]:
    """``s3`` and ``runtime`` wrapped with lean hot calls on sessions closed with ``stack``.

    Each session has as many connections as the client it stands beside; a client whose
    HTTP set-up cannot be copied (a proxy, the httpx backend) is returned as it is.
    """
    s3_session = await open_session(s3, s3_connections)
    if s3_session is not None:
        stack.push_async_callback(s3_session.aclose)
        s3 = LeanS3Client(s3, s3_session, expected_bucket_owner)
    runtime_session = await open_session(runtime, runtime_connections)
    if runtime_session is not None:
        stack.push_async_callback(runtime_session.aclose)
        runtime = LeanRuntime(runtime, runtime_session)
    return s3, runtime
