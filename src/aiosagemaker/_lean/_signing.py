"""Signing lean requests with botocore's own SigV4 signer and the client's credentials.

The endpoint (addressing style, ``AWS_ENDPOINT_URL_*``, custom ``endpoint_url``) is resolved
by the client's own endpoint ruleset, once per bucket; credentials are frozen from the
client's (refreshable) credentials on every request, so a refresh is picked up as botocore
picks it up.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import NoCredentialsError

__all__ = ["Endpoint", "Signer", "resolve_endpoint"]


class Endpoint:
    """Where one operation's requests go (for one bucket), and how they are signed."""

    __slots__ = ("region", "root", "service", "url")

    def __init__(self, url: str, region: str, service: str) -> None:
        self.url = url.rstrip("/")
        self.root = self.url if urlsplit(self.url).path else self.url + "/"
        """The URL of the bucket itself (``/`` added to a virtual-hosted one)."""
        self.region = region
        self.service = service


async def resolve_endpoint(client: Any, operation: str, params: dict[str, Any]) -> Endpoint | None:
    """The endpoint botocore would send ``operation`` with ``params`` to; None if not SigV4.

    Other signing schemes (SigV4a, S3 Express sessions, bearer tokens) and endpoints that
    ask for extra headers stay on botocore.
    """
    model = client.meta.service_model.operation_model(operation)
    context: dict[str, Any] = {
        "client_region": client.meta.region_name,
        "client_config": client.meta.config,
        "has_streaming_input": model.has_streaming_input,
        "auth_type": model.resolved_auth_type,
        "unsigned_payload": model.unsigned_payload,
        "auth_options": client.meta.service_model.metadata.get("auth"),
    }
    resolve = getattr(client, "_resolve_endpoint_ruleset", None)
    if resolve is None:
        return None
    url, headers, _ = await resolve(model, params, context)
    signing = context.get("signing") or {}
    if headers or context.get("auth_type") not in (None, "v4", "s3v4"):
        return None
    if signing.get("signing_name") not in (None, client.meta.service_model.signing_name):
        return None
    region = signing.get("region") or client.meta.region_name
    if not region or getattr(client.meta.config, "signature_version", None) not in (
        None,
        "v4",
        "s3v4",
    ):
        return None
    return Endpoint(str(url), str(region), str(client.meta.service_model.signing_name))


class Signer:
    """Signs requests for one client: its credentials, botocore's SigV4 (S3's for S3)."""

    def __init__(self, client: Any) -> None:
        self._signer = client._request_signer
        self._s3 = client.meta.service_model.service_name == "s3"
        self._context = {"client_config": client.meta.config}

    async def sign(
        self, endpoint: Endpoint, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> dict[str, str]:
        """The headers to send: ``headers`` plus the date, payload hash and Authorization."""
        credentials = self._signer._credentials
        if credentials is None:
            raise NoCredentialsError()
        frozen = await credentials.get_frozen_credentials()
        if frozen.access_key is None or frozen.secret_key is None:
            raise NoCredentialsError()
        request = AWSRequest(method=method, url=url, headers=headers, data=body)
        request.context.update(self._context)
        auth = S3SigV4Auth if self._s3 else SigV4Auth
        auth(frozen, endpoint.service, endpoint.region).add_auth(request)
        return dict(request.headers.items())
