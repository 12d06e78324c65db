"""The InvokeEndpointAsync server (aiohttp): ``POST /endpoints/{EndpointName}/async-invocations``.

``POST /`` (``X-Amz-Target: SageMaker.<Operation>``) goes to the control plane, when one is given.
``GET /ping`` answers 200 with an empty body once the server is up (a health check).

Answers 202 with ``{"InferenceId": ...}`` and the Output/Failure location headers, or a
rest-json error (``x-amzn-ErrorType`` + ``{"message": ...}``): 400 ``ValidationError``, 404 for
unknown paths, 500 ``InternalFailure`` on emulator bugs, 503 ``ServiceUnavailable`` while
stopping or when injected.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from aiosagemaker._limits import INLINE_BODY_MAX_BYTES

from ._errors import (
    InternalFailure,
    ServiceError,
    ServiceUnavailable,
    UnknownOperation,
    ValidationError,
)
from ._faults import FaultState
from ._queue import EndpointQueue, Invocation, Tracker
from ._request import (
    H_FAILURE_LOCATION,
    H_OUTPUT_LOCATION,
    InvocationRequest,
    parse_request,
    validate_endpoint_name,
)
from ._sockets import bind_socket
from ._spec import ResolvedEndpoint

logger = logging.getLogger("aiosagemaker.local")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def result_locations(
    endpoint: ResolvedEndpoint, request: InvocationRequest
) -> tuple[str, str | None]:
    """Output and failure URIs of one invocation.

    ``<S3OutputPath>/<uuid>.out`` and ``<S3FailurePath>/<uuid>-error.out`` (one uuid, not the
    inference id). ``S3OutputPathExtension`` adds a sub-path; ``Filename`` replaces
    ``<uuid>.out`` (failure: ``<Filename>-error.out``).
    """
    name = uuid.uuid4()
    extension = (request.s3_output_path_extension or "").strip("/")
    prefix = f"/{extension}" if extension else ""
    output_name = request.filename or f"{name}.out"
    failure_name = f"{request.filename}-error.out" if request.filename else f"{name}-error.out"
    output = f"{endpoint.output_path}{prefix}/{output_name}"
    failure = None
    if endpoint.failure_path is not None:
        failure = f"{endpoint.failure_path}{prefix}/{failure_name}"
    return output, failure


def error_response(error: ServiceError) -> web.Response:
    """The rest-json error response for ``error``."""
    return web.Response(
        status=error.status,
        body=error.body(),
        content_type="application/json",
        headers={"x-amzn-ErrorType": error.error_type, "x-amzn-RequestId": str(uuid.uuid4())},
    )


async def _read_body(request: web.Request) -> tuple[bytes | None, int]:
    """Read the body unless it is over the inline limit; return it and its length."""
    declared = request.content_length
    if declared is not None and declared > INLINE_BODY_MAX_BYTES:
        return None, declared
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > INLINE_BODY_MAX_BYTES:
            return None, size
        chunks.append(chunk)
    return b"".join(chunks), size


class RuntimeServer:
    """The aiohttp application and its site; lives on the emulator's loop."""

    def __init__(
        self,
        queues: Mapping[str, EndpointQueue],
        faults: FaultState,
        tracker: Tracker,
        account_id: str,
        control: Handler | None = None,
    ) -> None:
        self._queues = queues
        self._control = control
        self._faults = faults
        self._tracker = tracker
        self._account_id = account_id
        self._runner: web.AppRunner | None = None
        self.stopping = False
        self.port = 0

    def app(self) -> web.Application:
        """Build the aiohttp application."""
        app = web.Application(middlewares=[self._errors], client_max_size=INLINE_BODY_MAX_BYTES + 1)
        app.router.add_post("/endpoints/{name}/async-invocations", self._invoke)
        app.router.add_get("/ping", self._ping)
        if self._control is not None:  # the control plane (JSON protocol, X-Amz-Target)
            app.router.add_post("/", self._control)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def start(self, host: str, port: int) -> None:
        """Bind ``host:port`` (0 = a free port) and serve."""
        sock = bind_socket(host, port, "the runtime server")
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        """Stop serving."""
        self.stopping = True
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ServiceError as error:
            return error_response(error)
        except web.HTTPException as exc:
            if exc.status in (404, 405):
                return error_response(
                    UnknownOperation(f"No operation matches {request.method} {request.path}.")
                )
            raise
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("internal failure handling %s %s", request.method, request.path)
            return error_response(InternalFailure("An internal error occurred in the emulator."))

    async def _ping(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=200, body=b"")

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        raise UnknownOperation(f"No operation matches {request.method} {request.path}.")

    async def _invoke(self, request: web.Request) -> web.StreamResponse:
        if self.stopping:
            raise ServiceUnavailable("The endpoint is shutting down. Retry later.")
        name = request.match_info["name"]
        validate_endpoint_name(name)
        queue = self._queues.get(name)
        body, length = await _read_body(request)
        parsed = parse_request(name, request.headers, body, length)
        if queue is None:
            raise ValidationError(f"Endpoint {name} of account {self._account_id} not found.")
        if self._faults.unavailable():
            self._tracker.update(name, rejected_unavailable=1)
            logger.info("endpoint=%s rejected: ServiceUnavailable (injected)", name)
            raise ServiceUnavailable("The service is unavailable. Please try again later.")
        if self._faults.internal_failure():
            self._tracker.update(name, rejected_internal=1)
            logger.info("endpoint=%s rejected: InternalFailure (injected)", name)
            raise InternalFailure("An internal error occurred. Please try again.")
        delay = self._faults.config.accept_delay
        if delay > 0:
            await asyncio.sleep(delay)
        if self.stopping:
            raise ServiceUnavailable("The endpoint is shutting down. Retry later.")
        inference_id = parsed.inference_id or str(uuid.uuid4())
        output, failure = result_locations(queue.endpoint, parsed)
        queue.submit(
            Invocation(
                request=parsed,
                inference_id=inference_id,
                output_location=output,
                failure_location=failure,
            )
        )
        logger.info(
            "endpoint=%s inference=%s accepted input=%s output=%s",
            name,
            inference_id,
            parsed.input_location or f"<inline {len(parsed.body or b'')} bytes>",
            output,
        )
        headers = {H_OUTPUT_LOCATION: output, "x-amzn-RequestId": str(uuid.uuid4())}
        if failure is not None:
            headers[H_FAILURE_LOCATION] = failure
        return web.json_response({"InferenceId": inference_id}, status=202, headers=headers)
