"""Local SageMaker async-inference endpoint emulator (install ``aiosagemaker[local]``).

``LocalEndpoint`` serves InvokeEndpointAsync on loopback and runs moto's S3, SNS, SQS and STS
behind it; boto-based clients reach it through ``LocalEndpoint.env`` (``AWS_ENDPOINT_URL_*``).
Names are imported lazily so that importing this package (e.g. by the pytest plugin) does not
import moto or aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._emulator import LocalEndpoint
    from ._faults import FaultConfig, Latency
    from ._queue import EndpointStats
    from ._spec import ConfigError, EndpointSpec, ResolvedEndpoint

__all__ = [
    "ConfigError",
    "EndpointSpec",
    "EndpointStats",
    "FaultConfig",
    "Latency",
    "LocalEndpoint",
    "ResolvedEndpoint",
]

_WHERE = {
    "ConfigError": "._spec",
    "EndpointSpec": "._spec",
    "ResolvedEndpoint": "._spec",
    "FaultConfig": "._faults",
    "Latency": "._faults",
    "EndpointStats": "._queue",
    "LocalEndpoint": "._emulator",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
