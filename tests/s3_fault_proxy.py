"""A recording, fault-injecting HTTP proxy in front of a local server, for the client's tests.

It forwards every request to the real (moto) S3 server and records it, unless a :class:`Fault`
matches: then it answers with an S3 error document (or a JSON one, for rest-json services
such as the SageMaker runtime), or drops the connection, on the server side. A fault with
``after_forward`` lets the request through first and then loses the answer: ``"drop"``
closes the connection without answering, ``"hang"`` answers only after ``hang`` seconds;
the body-level faults send the real status and headers and then spoil the body:
``"truncate"`` announces the whole Content-Length but sends half the body and closes,
``"stall"`` sends half the body and then nothing for ``hang`` seconds, ``"chunked"`` sends
the body whole but chunked (no Content-Length).
The client under test reaches it through ``AWS_ENDPOINT_URL_*`` like any endpoint.
"""

from __future__ import annotations

import asyncio
import io
import random
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Literal

import anyio
from aiohttp import ClientSession, web

_HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "content-encoding"}


@dataclass
class Fault:
    """Answer matching requests with ``status``/``code`` (or drop the connection).

    ``after_forward``: forward the request upstream, then ``"drop"`` the connection without
    answering or ``"hang"`` ``hang`` seconds before answering (an answer lost after the
    request was accepted). ``document``: ``"xml"`` (S3) or ``"json"`` (rest-json services).
    ``method`` ``"*"`` matches any method; ``rate`` is the fraction of matching requests hit
    (drawn from the proxy's seeded generator). ``after_forward`` ``"truncate"``, ``"stall"``
    and ``"chunked"`` spoil the body of a successful answer (see the module docstring).
    """

    method: str
    path_contains: str
    status: int = 503
    code: str = "SlowDown"
    times: int | None = None
    reset: bool = False
    after_forward: Literal["drop", "hang", "truncate", "stall", "chunked"] | None = None
    hang: float = 5.0
    document: Literal["xml", "json"] = "xml"
    rate: float = 1.0
    hits: int = field(default=0, init=False)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return self.method in ("*", method) and self.path_contains in path


class S3FaultProxy:
    """Runs on its own event loop in a background thread; ``url`` is its loopback address."""

    def __init__(self, upstream: str, *, seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.upstream_status: dict[int, int] = {}
        """Request index -> the status upstream answered (forwarded requests only)."""
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self.url = ""

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with self._lock:
            self.faults.remove(fault)

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()
            self.headers.clear()
            self.upstream_status.clear()

    def count(self, method: str, path_contains: str = "") -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and path_contains in p)

    async def _start(self) -> None:
        self._client = ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    def _match(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, Fault | None]:
        with self._lock:
            index = len(self.requests)
            self.requests.append((method, path))
            self.headers.append(headers)
            for fault in self.faults:
                if fault.matches(method, path) and (
                    fault.rate >= 1 or self._rng.random() < fault.rate
                ):
                    fault.hits += 1
                    return index, fault
        return index, None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        index, fault = self._match(request.method, request.path_qs, dict(request.headers))
        if fault is not None and fault.reset:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if fault is not None and fault.after_forward is not None:
            response = await self._forward(request, body, index)
            if fault.after_forward in ("truncate", "stall", "chunked"):
                return await self._spoil(request, response, fault)
            if fault.after_forward == "drop":
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=500)
            await asyncio.sleep(fault.hang)  # the client's read timeout is what is tested
            return response
        if fault is not None and fault.document == "json":
            return web.json_response(
                {"__type": fault.code, "message": f"injected {fault.code}"},
                status=fault.status,
                headers={"x-amzn-ErrorType": fault.code, "x-amzn-RequestId": "fault"},
            )
        if fault is not None:
            document = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{fault.code}</Code><Message>injected {fault.code}</Message>"
                f"<Resource>{request.path}</Resource><RequestId>fault</RequestId></Error>"
            )
            return web.Response(
                status=fault.status,
                body=b"" if request.method == "HEAD" else document.encode(),
                content_type="application/xml",
            )
        return await self._forward(request, body, index)

    async def _spoil(
        self, request: web.Request, upstream: web.Response, fault: Fault
    ) -> web.StreamResponse:
        """Send ``upstream``'s status and headers, then its body spoilt as ``fault`` says."""
        payload = bytes(upstream.body) if isinstance(upstream.body, bytes) else b""
        response = web.StreamResponse(status=upstream.status, headers=upstream.headers)
        if fault.after_forward == "chunked":
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(payload), 64 * 1024):
                await response.write(payload[start : start + 64 * 1024])
            await response.write_eof()
            return response
        response.content_length = len(payload)
        await response.prepare(request)
        await response.write(payload[: len(payload) // 2])
        if fault.after_forward == "stall":
            await asyncio.sleep(fault.hang)
        assert request.transport is not None
        request.transport.close()
        return response

    async def _forward(self, request: web.Request, body: bytes, index: int) -> web.Response:
        assert self._client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._client.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            # a file-like body: aiohttp warns that large raw bytes might block the loop
            data=io.BytesIO(body) if body else None,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            with self._lock:
                self.upstream_status[index] = upstream.status
            response_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS
            }
            return web.Response(status=upstream.status, body=payload, headers=response_headers)


@contextmanager
def running_proxy(upstream: str) -> Iterator[S3FaultProxy]:
    """Start a proxy for ``upstream`` and stop it on exit."""
    proxy = S3FaultProxy(upstream)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@asynccontextmanager
async def running_proxy_async(upstream: str) -> AsyncIterator[S3FaultProxy]:
    """:func:`running_proxy` for async tests: starts and stops it without blocking the loop."""
    proxy = S3FaultProxy(upstream)
    await anyio.to_thread.run_sync(proxy.start)
    try:
        yield proxy
    finally:
        await anyio.to_thread.run_sync(proxy.stop)
