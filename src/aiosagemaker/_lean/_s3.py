"""A lean S3 client: GetObject, PutObject (bytes) and ListObjectsV2 pages on aiohttp.

:class:`LeanS3Client` stands where the aiobotocore S3 client stood in
:class:`~.._s3_transport.S3Transport`: the three hot calls, made the way the transport makes
them, are built, signed and parsed here; any other call, argument or body (file objects, multipart,
``SSECustomerKey``, ...), and a bucket S3 redirects to another region, goes to the
aiobotocore client unchanged, which is also where
``meta``, waiters and every other operation come from.
"""

from __future__ import annotations

import random
from typing import Any

import aiohttp
import anyio
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import percent_encode

from .._aws_errors import classify
from .._clients import LISTED_SIZES
from ._errors import client_error, response_metadata
from ._http import Session, send, translate
from ._listing import read_page
from ._signing import Endpoint, Signer, resolve_endpoint

__all__ = ["LeanS3Client", "header_arguments", "retry_attempts"]

_LEAN_PUT = frozenset({"Bucket", "Key", "Body"})
_LEAN_LIST = frozenset({"Bucket", "Prefix", "MaxKeys", "ContinuationToken"})
_REDIRECTS = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)
"""S3's answers for a bucket in another region: botocore's redirector re-sends those."""
_SPECIAL = ("SSECustomer", "Checksum", "CopySource")
"""Arguments botocore computes or encodes with handlers of its own: they stay on botocore."""


def header_arguments(
    client: Any, operation: str, arguments: dict[str, Any]
) -> dict[str, str] | None:
    """The HTTP headers of ``arguments`` by the service model; None if one is not a plain header.

    Strings, integers and booleans with ``location`` header are mapped by ``locationName``,
    string maps with ``location`` headers (``Metadata``) by prefix; anything else
    (timestamps, arguments with handlers of their own) returns None.
    """
    members = client.meta.service_model.operation_model(operation).input_shape.members
    headers: dict[str, str] = {}
    for name, value in arguments.items():
        shape = members.get(name)
        if shape is None or name.startswith(_SPECIAL):
            return None
        location = shape.serialization.get("location")
        if location == "headers" and isinstance(value, dict):  # Metadata: x-amz-meta-*
            if not all(isinstance(v, str) for v in value.values()):
                return None
            prefix = shape.serialization["name"]
            headers.update({f"{prefix}{k}": v for k, v in value.items()})
            continue
        if location != "header":
            return None
        if shape.type_name == "string" and isinstance(value, str):
            headers[shape.serialization["name"]] = value
        elif shape.type_name in ("integer", "long") and type(value) is int:
            headers[shape.serialization["name"]] = str(value)
        elif shape.type_name == "boolean" and isinstance(value, bool):
            headers[shape.serialization["name"]] = "true" if value else "false"
        else:
            return None
    return headers


MAX_BACKOFF = 20.0
"""Longest pause between two tries of a lean request (botocore's standard mode caps at 20 s)."""


def retry_attempts(client: Any) -> int:
    """How many times botocore would send a request of ``client``, the first included.

    From its resolved retry config (``total_max_attempts`` or ``max_attempts`` + 1), else the
    mode's default: 5 for ``legacy``, 3 for ``standard`` and ``adaptive``.
    """
    retries = getattr(client.meta.config, "retries", None) or {}
    total = retries.get("total_max_attempts")
    if total is None and retries.get("max_attempts") is not None:
        total = int(retries["max_attempts"]) + 1
    if total is None:
        total = 5 if retries.get("mode", "legacy") == "legacy" else 3
    return max(1, int(total))


class _Redirected(Exception):
    """Internal: S3 sent the request elsewhere (another region): botocore follows that."""


class _Body:
    """A GET's streamed body: ``read(amt)`` and ``aclose()`` as aiobotocore's body has them."""

    __slots__ = ("_response", "_url")

    def __init__(self, response: aiohttp.ClientResponse, url: str) -> None:
        self._response = response
        self._url = url

    async def read(self, amt: int | None = None) -> bytes:
        try:
            if amt is None or amt < 0:
                return await self._response.content.read()
            return await self._response.content.read(amt)
        except Exception as error:
            raise translate(error, self._url) from error

    async def aclose(self) -> None:
        """Give the connection back when the body was read to its end, else close it."""
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class LeanS3Client:
    """The aiobotocore S3 client ``client`` with GET, PUT and LIST sent on ``session``.

    Args:
        client: The open aiobotocore S3 client (endpoint, credentials, other calls).
        session: The aiohttp session of the lean requests (closed by whoever opened it).
        expected_bucket_owner: Sent as ``x-amz-expected-bucket-owner`` on every lean request.
    """

    def __init__(self, client: Any, session: Session, expected_bucket_owner: str | None) -> None:
        self._lean_client = client
        self._lean_session = session
        self._lean_signer = Signer(client)
        self._lean_owner = (
            {}
            if expected_bucket_owner is None
            else {"x-amz-expected-bucket-owner": expected_bucket_owner}
        )
        self._lean_endpoints: dict[str, Endpoint | None] = {}
        self._lean_attempts = retry_attempts(client)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lean_client, name)

    async def _lean_endpoint(self, bucket: str) -> Endpoint | None:
        if bucket not in self._lean_endpoints:
            self._lean_endpoints[bucket] = await resolve_endpoint(
                self._lean_client, "GetObject", {"Bucket": bucket, "Key": "key"}
            )
        return self._lean_endpoints[bucket]

    async def _lean_request(
        self,
        operation: str,
        endpoint: Endpoint,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes = b"",
    ) -> tuple[aiohttp.ClientResponse, bytes | None]:
        """Send the request, retried as botocore retries it: throttling, 5xx and broken
        connections, up to the client's retry attempts, with jittered exponential backoff."""
        attempt = 1
        while True:
            try:
                return await self._lean_send(operation, endpoint, method, url, headers, body)
            except (BotoCoreError, ClientError) as error:
                if attempt >= self._lean_attempts or not classify(error).retryable:
                    raise
                del error  # no frame -> error -> traceback -> frame cycle while sleeping
            await anyio.sleep(random.random() * min(MAX_BACKOFF, 2.0 ** (attempt - 1)))
            attempt += 1

    async def _lean_send(
        self,
        operation: str,
        endpoint: Endpoint,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[aiohttp.ClientResponse, bytes | None]:
        signed = await self._lean_signer.sign(
            endpoint, method, url, {**headers, **self._lean_owner}, body
        )
        response, data = await send(self._lean_session, method, url, signed, body or None)
        if response.status >= 300:
            error = client_error(
                self._lean_client, operation, response.status, dict(response.headers), data or b""
            )
            try:
                if response.status < 400 or error.response["Error"]["Code"] in _REDIRECTS:
                    raise _Redirected() from error
                raise error
            finally:
                del error  # no frame -> error -> traceback -> frame cycle for the GC to find
        return response, data

    async def get_object(self, **arguments: Any) -> dict[str, Any]:
        """GetObject: ``Body`` streamed, ``ContentLength``, ``ContentType``."""
        endpoint = None
        if arguments.keys() == {"Bucket", "Key"}:
            endpoint = await self._lean_endpoint(arguments["Bucket"])
        if endpoint is None:
            return await self._lean_client.get_object(**arguments)  # type: ignore[no-any-return]
        url = f"{endpoint.url}/{percent_encode(arguments['Key'], safe='/~')}"
        try:
            response, _ = await self._lean_request("GetObject", endpoint, "GET", url, {})
        except _Redirected:
            self._lean_endpoints[arguments["Bucket"]] = None
            return await self._lean_client.get_object(**arguments)  # type: ignore[no-any-return]
        length = response.headers.get("Content-Length")
        return {
            "Body": _Body(response, url),
            "ContentLength": None if length is None else int(length),
            "ContentType": response.headers.get("Content-Type"),
            "ResponseMetadata": response_metadata(response.status, dict(response.headers)),
        }

    async def put_object(self, **arguments: Any) -> dict[str, Any]:
        """PutObject of a bytes ``Body`` with header arguments (ContentType, SSE, Tagging...)."""
        body = arguments.get("Body")
        headers = header_arguments(
            self._lean_client,
            "PutObject",
            {k: v for k, v in arguments.items() if k not in _LEAN_PUT},
        )
        endpoint = None
        if isinstance(body, bytes) and headers is not None and arguments.keys() >= _LEAN_PUT:
            endpoint = await self._lean_endpoint(arguments["Bucket"])
        if endpoint is None or headers is None or not isinstance(body, bytes):
            return await self._lean_client.put_object(**arguments)  # type: ignore[no-any-return]
        url = f"{endpoint.url}/{percent_encode(arguments['Key'], safe='/~')}"
        try:
            response, _ = await self._lean_request("PutObject", endpoint, "PUT", url, headers, body)
        except _Redirected:
            self._lean_endpoints[arguments["Bucket"]] = None
            return await self._lean_client.put_object(**arguments)  # type: ignore[no-any-return]
        metadata = response_metadata(response.status, dict(response.headers))
        return {"ETag": response.headers.get("ETag"), "ResponseMetadata": metadata}

    async def list_objects_v2(self, **arguments: Any) -> dict[str, Any]:
        """A ListObjectsV2 page: its ``{key: size}`` under :data:`~.._clients.LISTED_SIZES`."""
        endpoint = None
        if "Bucket" in arguments and arguments.keys() <= _LEAN_LIST:
            endpoint = await self._lean_endpoint(arguments["Bucket"])
        if endpoint is None:
            return await self._lean_client.list_objects_v2(**arguments)  # type: ignore[no-any-return]
        query = {"list-type": "2", "encoding-type": "url"}
        for name, field in (
            ("ContinuationToken", "continuation-token"),
            ("MaxKeys", "max-keys"),
            ("Prefix", "prefix"),
        ):
            if arguments.get(name) is not None:
                query[field] = str(arguments[name])
        url = f"{endpoint.root}?" + "&".join(
            f"{name}={percent_encode(value)}" for name, value in sorted(query.items())
        )
        try:
            response, data = await self._lean_request("ListObjectsV2", endpoint, "GET", url, {})
        except _Redirected:
            self._lean_endpoints[arguments["Bucket"]] = None
            return await self._lean_client.list_objects_v2(**arguments)  # type: ignore[no-any-return]
        if data is None:
            async with response:
                try:
                    data = await response.read()
                except Exception as error:
                    raise translate(error, url) from error
        sizes, truncated, token = read_page(data)
        page: dict[str, Any] = {LISTED_SIZES: sizes, "IsTruncated": truncated}
        if token is not None:
            page["NextContinuationToken"] = token
        return page
