"""Where a predictor's requests go: S3 requests and the SageMaker runtime client, as a unit.

:func:`open_transport` builds the built-in ones (aiobotocore clients from the predictor's
:class:`~._clients.ClientFactory`, wrapped by :class:`~._s3_transport.S3Transport`; with ``"lean"``
the hot calls go on aiohttp, :mod:`._lean`); ``AsyncPredictor(transport=...)`` takes a
name (:data:`TRANSPORT_NAMES`) or another :class:`Transport`, as httpx takes a transport.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal

import anyio

from ._clients import ClientFactory, fast_timestamps, lean_listings
from ._config import S3Options
from ._lean import open_lean_clients
from ._s3 import S3Requests, detection_slots
from ._s3_transport import S3Transport

__all__ = [
    "DEFAULT_TRANSPORT",
    "TRANSPORT_ENV",
    "TRANSPORT_NAMES",
    "Transport",
    "TransportName",
    "open_transport",
    "transport_choice",
]

TransportName = Literal["lean", "botocore"]
TRANSPORT_NAMES: tuple[TransportName, ...] = ("lean", "botocore")
"""``"botocore"``: every request through aiobotocore. ``"lean"``: PutObject (bytes),
GetObject, ListObjectsV2 and InvokeEndpointAsync built on aiohttp and signed with botocore's
SigV4 (a fraction of the CPU), everything else through aiobotocore."""
DEFAULT_TRANSPORT: TransportName = "lean"
TRANSPORT_ENV = "AIOSAGEMAKER_TRANSPORT"
"""Environment variable naming the built-in transport when ``transport`` is not given."""


@dataclass(frozen=True, slots=True)
class Transport:
    """The requests of an :class:`~aiosagemaker.AsyncPredictor` (advanced).

    Args:
        s3: Uploads, result reads and the waiting engine's checks (the protocol
            :class:`~._s3.S3Requests`; the default is an :class:`~._s3_transport.S3Transport`).
        runtime: The SageMaker runtime client: ``invoke_endpoint_async(**arguments)``
            and aiobotocore's ``meta`` (its service model and region).

    Whoever builds a transport opens and closes it; the predictor only uses it. A given
    ``s3`` is responsible for its own throttling signals (the default tells the waiting
    engine's request budget of every SlowDown).
    """

    s3: S3Requests
    runtime: Any


def transport_choice(transport: object) -> Transport | TransportName:
    """``transport`` checked: a :class:`Transport`, or a name (None: :data:`TRANSPORT_ENV`)."""
    if transport is None:
        transport = os.environ.get(TRANSPORT_ENV) or DEFAULT_TRANSPORT
        where = f"the environment variable {TRANSPORT_ENV}"
    else:
        where = "transport"
    if isinstance(transport, Transport):
        return transport
    if not isinstance(transport, str):
        raise TypeError(
            "transport must be 'lean', 'botocore', an aiosagemaker Transport or None, got "
            f"{type(transport).__name__}"
        )
    for name in TRANSPORT_NAMES:
        if transport == name:
            return name
    raise ValueError(f"{where} must be 'lean' or 'botocore', got {transport!r}")


async def open_transport(
    factory: ClientFactory,
    stack: AsyncExitStack,
    *,
    limit: int,
    max_retries: int,
    on_throttle: Callable[[], None],
    on_request: Callable[[str], None] | None,
    options: S3Options,
    name: TransportName = DEFAULT_TRANSPORT,
) -> Transport:
    """The built-in transport ``name``: aiobotocore clients (and sessions) closed with ``stack``.

    ``limit`` bounds concurrent uploads and result reads; the S3 client's pool has room for
    the waiting engine's detection requests beside them (:func:`~._s3.detection_slots`).
    The lean sessions get the same pool sizes as the clients they stand beside.
    """
    runtime = await stack.enter_async_context(factory.client("sagemaker-runtime"))
    extra = detection_slots(limit)
    s3 = await stack.enter_async_context(factory.client("s3", extra_connections=extra))
    fast_timestamps(s3)
    lean_listings(s3)
    if name == "lean":
        s3, runtime = await open_lean_clients(
            s3,
            runtime,
            stack,
            s3_connections=factory.max_pool_connections + extra,
            runtime_connections=factory.max_pool_connections,
            expected_bucket_owner=options.expected_bucket_owner,
        )
    requests = S3Transport(
        s3,
        anyio.CapacityLimiter(limit),
        max_retries=max_retries,
        on_throttle=on_throttle,
        on_request=on_request,
        options=options,
    )
    return Transport(requests, runtime)
