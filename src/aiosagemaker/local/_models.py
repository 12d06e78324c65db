"""Model backends: a Python callable, or an HTTP container speaking SageMaker's contract.

Both raise :class:`ModelError` with a SageMaker-like failure reason when the model fails.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from ._spec import ConfigError, ModelRef

logger = logging.getLogger("aiosagemaker.local")

DEFAULT_CONTAINER_PORT = 8080
PING_TIMEOUT_SECONDS = 2.0


class ModelError(Exception):
    """The model failed; ``reason`` becomes the failure object and ``failureReason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ModelInput:
    """What a model receives."""

    body: bytes
    content_type: str | None
    accept: str | None
    custom_attributes: str | None
    inference_id: str


@dataclass(frozen=True)
class ModelOutput:
    """What a model produced: the result bytes and their content type."""

    body: bytes
    content_type: str


class Model(Protocol):
    """A model backend."""

    async def invoke(self, request: ModelInput) -> ModelOutput:
        """Run the model; raise :class:`ModelError` on failure."""
        ...

    async def close(self) -> None:
        """Release resources."""
        ...


def _server_error(message: str) -> ModelError:
    return ModelError(
        f'ClientError: Received server error (500) from model with message "{message}".'
    )


def _normalise(result: Any, accept: str | None) -> ModelOutput:
    content_type: str | None = None
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
        result, content_type = result
    if isinstance(result, bytes | bytearray | memoryview):
        return ModelOutput(bytes(result), content_type or accept or "application/octet-stream")
    if isinstance(result, str):
        return ModelOutput(result.encode(), content_type or accept or "text/plain; charset=utf-8")
    raise _server_error(
        f"model returned {type(result).__name__}; expected bytes, str or (bytes, content_type)"
    )


class CallableModel:
    """A Python callable ``fn(body, content_type, accept)``, sync (run in a thread) or async."""

    def __init__(self, fn: Callable[..., Any], max_threads: int) -> None:
        self._fn = fn
        call = getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)
        self._max_threads = max(1, max_threads)
        self._executor: ThreadPoolExecutor | None = None

    async def invoke(self, request: ModelInput) -> ModelOutput:
        """Call the function; any exception is a model error."""
        args = (request.body, request.content_type, request.accept)
        try:
            if self._is_async:
                result = await self._fn(*args)
            else:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        self._max_threads, thread_name_prefix="aiosagemaker-local-model"
                    )
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self._executor, lambda: self._fn(*args))
                if inspect.isawaitable(result):
                    result = await result
        except ModelError:
            raise
        except Exception as exc:  # the model's own failure
            logger.info("model of inference %s raised %r", request.inference_id, exc)
            raise _server_error(f"{type(exc).__name__}: {exc}") from exc
        return _normalise(result, request.accept)

    async def close(self) -> None:
        """Shut the thread pool down without waiting for abandoned calls."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


class ContainerModel:
    """A serving container on ``url`` (``GET /ping``, ``POST /invocations``)."""

    def __init__(self, url: str, max_connections: int) -> None:
        self.url = container_base_url(url)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def ping(self) -> bool:
        """``GET /ping`` once; ``True`` if it answered 200 within 2 s."""
        try:
            async with self._client().get(
                f"{self.url}/ping", timeout=aiohttp.ClientTimeout(total=PING_TIMEOUT_SECONDS)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def invoke(self, request: ModelInput) -> ModelOutput:
        """``POST /invocations``; non-2xx or a missing Content-Length is a model error."""
        headers = {"Content-Type": request.content_type or "application/octet-stream"}
        if request.accept:
            headers["Accept"] = request.accept
        if request.custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = request.custom_attributes
        headers["X-Amzn-SageMaker-Inference-Id"] = request.inference_id
        try:
            async with self._client().post(
                f"{self.url}/invocations", data=request.body, headers=headers
            ) as response:
                body = await response.read()
                status = response.status
                has_length = "Content-Length" in response.headers
                content_type = response.headers.get("Content-Type", "application/octet-stream")
        except aiohttp.ClientError as exc:
            raise ModelError(
                f"ClientError: An error occurred while sending the request to the model "
                f"container at {self.url}: {exc}"
            ) from exc
        if not 200 <= status < 300:
            kind = "client" if 400 <= status < 500 else "server"
            text = body[:1024].decode("utf-8", "replace")
            raise ModelError(
                f'ClientError: Received {kind} error ({status}) from model with message "{text}".'
            )
        if not has_length:
            raise ModelError(
                "ClientError: The response from the model container did not specify the "
                "required Content-Length header."
            )
        return ModelOutput(body, content_type)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()


def container_base_url(url: str) -> str:
    """Normalise a container URL; port 8080 when none is given."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"bad container URL {url!r}: expected http://host[:port]")
    netloc = parts.netloc if parts.port else f"{parts.netloc}:{DEFAULT_CONTAINER_PORT}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def cwd_importable() -> None:
    """Put the current directory first on ``sys.path`` (as ``python -m`` does).

    Both command-line entry points call this, so ``--model mymodel:predict`` finds
    ``./mymodel.py`` from ``aiosagemaker local serve`` as from ``python -m aiosagemaker.local``.
    """
    cwd = os.getcwd()
    if sys.path[:1] not in ([""], [cwd]):
        sys.path.insert(0, cwd)


def import_callable(reference: str) -> Callable[..., Any]:
    """Import ``package.module:attr[.attr]``.

    Raises:
        ConfigError: The module or attribute cannot be found, or is not callable.
    """
    module_name, sep, attr_path = reference.partition(":")
    if not sep or not module_name or not attr_path:
        raise ConfigError(f"bad model reference {reference!r}: expected 'package.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import model module {module_name!r}: {exc}") from None
    for attr in attr_path.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(target):
        raise ConfigError(f"model {reference!r} is not callable")
    return target  # type: ignore[no-any-return]


def is_container_url(reference: ModelRef) -> bool:
    """Whether a model reference is a container URL."""
    return isinstance(reference, str) and "://" in reference


def check_model(reference: ModelRef) -> None:
    """Validate a model reference early (imports modules); raise :class:`ConfigError`."""
    if callable(reference):
        return
    if is_container_url(reference):
        container_base_url(reference)
    else:
        import_callable(reference)


def build_model(reference: ModelRef, max_concurrency: int) -> Model:
    """Create the backend for a model reference."""
    if callable(reference):
        return CallableModel(reference, max_concurrency)
    if is_container_url(reference):
        return ContainerModel(reference, max_concurrency)
    return CallableModel(import_callable(reference), max_concurrency)
