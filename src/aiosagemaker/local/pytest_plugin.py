"""pytest plugin (entry point ``pytest11``): a local async endpoint for your own tests.

Fixtures:
    ``local_async_endpoint_specs``: the endpoints to serve; override it in a conftest.py
        (default: one ``echo`` endpoint running ``aiosagemaker.local.models:echo``).
    ``local_async_endpoint``: a started :class:`aiosagemaker.local.LocalEndpoint`.
    ``local_aws_env``: ``local_async_endpoint.env`` applied with ``monkeypatch.setenv``.

Per test, ``@pytest.mark.aiosagemaker_local(endpoints=[...], time_scale=..., faults=...)`` passes
keyword arguments to ``LocalEndpoint`` (``endpoints`` replaces the specs fixture).

This module is imported by every pytest run where aiosagemaker is installed, so it imports
nothing heavy (moto, aiohttp, the emulator) until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aiosagemaker.local import EndpointSpec, LocalEndpoint

MARKER = "aiosagemaker_local"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**kwargs): keyword arguments for the local_async_endpoint fixture's "
        "LocalEndpoint (endpoints=, time_scale=, faults=, ...)",
    )


@pytest.fixture
def local_async_endpoint_specs() -> Sequence[EndpointSpec]:
    """Endpoints served by ``local_async_endpoint``; override to serve your own models."""
    from aiosagemaker.local import EndpointSpec

    return [EndpointSpec(name="echo", model="aiosagemaker.local.models:echo")]


@pytest.fixture
def local_async_endpoint(
    request: pytest.FixtureRequest, local_async_endpoint_specs: Sequence[EndpointSpec]
) -> Iterator[LocalEndpoint]:
    """A running local SageMaker async endpoint (with moto S3/SNS/SQS/STS), stopped after."""
    from aiosagemaker.local import LocalEndpoint

    kwargs: dict[str, Any] = {}
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        kwargs.update(marker.kwargs)
    endpoints = kwargs.pop("endpoints", local_async_endpoint_specs)
    with LocalEndpoint(endpoints, **kwargs) as local:
        yield local


@pytest.fixture
def local_aws_env(
    local_async_endpoint: LocalEndpoint, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point boto-based clients at ``local_async_endpoint`` through the environment."""
    env = local_async_endpoint.env
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
