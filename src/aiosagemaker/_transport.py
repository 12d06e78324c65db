"""Where a predictor's requests go: S3 requests and the SageMaker runtime client, as a unit.

:func:`open_transport` builds the default (aiobotocore clients from the predictor's
:class:`~._clients.ClientFactory`, wrapped by :class:`~._s3.S3Transport`);
``AsyncPredictor(transport=...)`` takes another one, as httpx takes a transport.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio

from ._clients import ClientFactory, fast_timestamps, lean_listings
from ._config import S3Options
from ._s3 import S3Requests, S3Transport, detection_slots

__all__ = ["Transport", "open_transport"]


@dataclass(frozen=True, slots=True)
class Transport:
    """The requests of an :class:`~aiosagemaker.AsyncPredictor` (advanced).

    Args:
        s3: Uploads, result reads and the waiting engine's checks (the protocol
            :class:`~._s3.S3Requests`; the default is an :class:`~._s3.S3Transport`).
        runtime: The SageMaker runtime client: ``invoke_endpoint_async(**arguments)``
            and aiobotocore's ``meta`` (its service model and region).

    Whoever builds a transport opens and closes it; the predictor only uses it. A given
    ``s3`` is responsible for its own throttling signals (the default tells the waiting
    engine's request budget of every SlowDown).
    """

    s3: S3Requests
    runtime: Any


async def open_transport(
    factory: ClientFactory,
    stack: AsyncExitStack,
    *,
    limit: int,
    max_retries: int,
    on_throttle: Callable[[], None],
    on_request: Callable[[str], None] | None,
    options: S3Options,
) -> Transport:
    """The default transport: aiobotocore clients closed with ``stack``.

    ``limit`` bounds concurrent uploads and result reads; the S3 client's pool has room for
    the waiting engine's detection requests beside them (:func:`~._s3.detection_slots`).
    """
    runtime = await stack.enter_async_context(factory.client("sagemaker-runtime"))
    s3 = await stack.enter_async_context(
        factory.client("s3", extra_connections=detection_slots(limit))
    )
    fast_timestamps(s3)
    lean_listings(s3)
    requests = S3Transport(
        s3,
        anyio.CapacityLimiter(limit),
        max_retries=max_retries,
        on_throttle=on_throttle,
        on_request=on_request,
        options=options,
    )
    return Transport(requests, runtime)
