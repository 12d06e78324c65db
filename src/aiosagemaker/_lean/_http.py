"""The lean transport's HTTP: an aiohttp session per client, errors as aiobotocore raises them.

The session copies what the aiobotocore client would use (pool size, timeouts, connector
arguments, TLS verification); a client behind a proxy, or on another HTTP backend, gets no
session and stays on botocore. :func:`send` maps aiohttp's errors to botocore's exactly as
aiobotocore's ``AIOHTTPSession.send`` does, so the library's error sorting is unchanged.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
from aiohttp import http_exceptions
from botocore.exceptions import (
    BotoCoreError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.httpsession import get_cert_path
from yarl import URL

__all__ = ["Session", "open_session", "send", "translate"]

_CLOSED = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientPayloadError,
    http_exceptions.BadStatusLine,
)


class Session:
    """An aiohttp session made on first use (as aiobotocore makes its own), closed by
    :meth:`aclose`: a client opened and never used holds no connector."""

    def __init__(self, limit: int, ssl: Any, timeout: aiohttp.ClientTimeout, args: Any) -> None:
        self._limit = limit
        self._ssl = ssl
        self._timeout = timeout
        self._args = args
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        """The session (made now if this is the first request)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit, ssl=self._ssl, **self._args)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                skip_auto_headers={"Content-Type"},
                auto_decompress=False,
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session and its connections, if it was made."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def open_session(client: Any, limit: int) -> Session | None:
    """A session like ``client``'s own with ``limit`` connections; None if it cannot be copied."""
    http = getattr(getattr(client, "_endpoint", None), "http_session", None)
    timeout = getattr(http, "_timeout", None)
    args = getattr(http, "_connector_args", None)
    proxies = getattr(http, "_proxy_config", None)
    if not isinstance(timeout, aiohttp.ClientTimeout) or not isinstance(args, dict):
        return None  # the httpx backend, or an aiobotocore layout this module does not know
    endpoint = str(client.meta.endpoint_url)
    if proxies is None or proxies.proxy_url_for(endpoint):
        return None
    connector_args = dict(args)
    ssl: Any = connector_args.pop("ssl_context", None)
    if ssl is None and endpoint.startswith("https"):
        build = getattr(http, "_build_ssl_contexts", None)  # aiobotocore 3
        if build is not None:
            ssl, _ = await asyncio.to_thread(build, None)
        else:
            ssl = await asyncio.to_thread(_ssl_context, http)
    return Session(limit, True if ssl is None else ssl, timeout, connector_args)


def _ssl_context(http: Any) -> Any:
    """The TLS set-up of an aiobotocore 2 session (verify, CA bundle, client certificate)."""
    verify = getattr(http, "_verify", True)
    if not verify:
        return False
    context = http._get_ssl_context()
    context.check_hostname = True
    cert = getattr(http, "_cert_file", None)
    if cert:
        context.load_cert_chain(cert, getattr(http, "_key_file", None))
    ca_certs = get_cert_path(verify)
    if ca_certs:
        context.load_verify_locations(ca_certs, None, None)
    return context


async def send(
    session: Session,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
) -> tuple[aiohttp.ClientResponse, bytes | None]:
    """Send one signed request: the response, and its body read whole unless it is a GET.

    aiohttp's errors become the botocore errors aiobotocore raises.
    """
    headers["Accept-Encoding"] = "identity"  # as aiobotocore sends (botocore issue 1255)
    try:
        response = await session.get().request(
            method, URL(url, encoded=True), headers=headers, data=body, allow_redirects=False
        )
        if method == "GET" and response.status < 300:
            return response, None
        async with response:
            return response, await response.read()
    except asyncio.CancelledError:
        raise
    except Exception as error:
        raise translate(error, url) from error


def translate(error: Exception, url: str) -> Exception:
    """The botocore error aiobotocore raises for the aiohttp ``error`` (botocore's unchanged)."""
    mapped: Exception = _botocore_error(error, url)
    return mapped


def _botocore_error(error: Exception, url: str) -> Any:
    if isinstance(error, BotoCoreError):
        return error
    if isinstance(error, aiohttp.ClientSSLError):
        return SSLError(endpoint_url=url, error=error)
    if isinstance(error, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        return ProxyConnectionError(proxy_url="", error=error)
    if isinstance(
        error,
        (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientPayloadError,
            http_exceptions.BadStatusLine,
        ),
    ):
        return ConnectionClosedError(error=error, request=None, endpoint_url=url)
    if isinstance(error, aiohttp.ServerTimeoutError):
        if str(error).lower().startswith("connect"):
            return ConnectTimeoutError(endpoint_url=url, error=error)
        return ReadTimeoutError(endpoint_url=url, error=error)
    if isinstance(error, (aiohttp.ClientConnectionError, socket.gaierror)):
        return EndpointConnectionError(endpoint_url=url, error=error)
    if isinstance(error, asyncio.TimeoutError):
        return ReadTimeoutError(endpoint_url=url, error=error)
    return HTTPClientError(error=error)
