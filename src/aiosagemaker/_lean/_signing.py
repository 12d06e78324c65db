"""Signing lean requests with botocore's own SigV4 signer and the client's credentials.

The endpoint (addressing style, ``AWS_ENDPOINT_URL_*``, custom ``endpoint_url``) is resolved
by the client's own endpoint ruleset, once per bucket; credentials are frozen from the
client's (refreshable) credentials on every request, so a refresh is picked up as botocore
picks it up.

The signers are botocore's ``SigV4Auth`` / ``S3SigV4Auth`` with two steps made cheaper, their
output unchanged: the signing key (four HMACs of the secret, the date, the region and the
service) is derived once per such tuple, and the headers to sign are gathered into a plain
dict rather than an ``email.message.Message`` (the ``Host`` value derived once per endpoint).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.auth import SIGNED_HEADERS_BLACKLIST, S3SigV4Auth, SigV4Auth, _host_from_url
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


class _HeadersToSign:
    """The headers to sign as botocore's SigV4 reads them (``in``, ``[]=``, names, ``get_all``):
    what its ``HTTPHeaders`` gives, names lowercased, repeated names kept."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, list[str]] = {}

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __setitem__(self, name: str, value: str) -> None:
        self._values.setdefault(name.lower(), []).append(value)

    def __iter__(self) -> Iterator[str]:
        for name, values in self._values.items():
            for _ in values:
                yield name

    def get_all(self, name: str, failobj: Any = None) -> Any:
        return list(self._values.get(name.lower(), ())) or failobj


@lru_cache(maxsize=64)
def _host(origin: str) -> str:
    """The ``Host`` botocore signs for a URL starting with ``origin`` (scheme://netloc)."""
    return str(_host_from_url(origin))


def _origin(url: str) -> str:
    """``scheme://netloc`` of ``url``."""
    start = url.find("//") + 2
    ends = [i for i in (url.find(c, start) for c in "/?#") if i >= 0]
    return url[: min(ends)] if ends else url


class _Keys:
    """The latest derived SigV4 signing key of one client (its secret, date, region, service)."""

    __slots__ = ("key", "scope")

    def __init__(self) -> None:
        self.scope: tuple[str, str, str, str] | None = None
        self.key = b""


class _Cheaper:
    """What the lean signers change of botocore's SigV4: the same signature, computed cheaper."""

    _keys: _Keys
    _headers_to_sign: _HeadersToSign
    credentials: Any
    _region_name: str
    _service_name: str

    if TYPE_CHECKING:

        def _sign(self, key: bytes, msg: str, hex: bool = False) -> Any:
            """botocore's HMAC-SHA256."""

    def headers_to_sign(self, request: AWSRequest) -> Any:
        """botocore's selection of the headers to sign, in a plain mapping; made once per
        signer (one per request: its canonical request and Authorization read the same)."""
        made: _HeadersToSign | None = getattr(self, "_headers_to_sign", None)
        if made is not None:
            return made
        headers = self._headers_to_sign = _HeadersToSign()
        for name, value in request.headers.items():
            lname = name.lower()
            if lname not in SIGNED_HEADERS_BLACKLIST:
                headers[lname] = value
        if "host" not in headers:
            headers["host"] = _host(_origin(request.url))
        return headers

    def signature(self, string_to_sign: str, request: AWSRequest) -> str:
        """botocore's signature; the key derived once per (secret, date, region, service)."""
        scope = (
            self.credentials.secret_key,
            request.context["timestamp"][0:8],
            self._region_name,
            self._service_name,
        )
        keys = self._keys
        if keys.scope != scope:
            k_date = self._sign(f"AWS4{scope[0]}".encode(), scope[1])
            k_region = self._sign(k_date, self._region_name)
            k_service = self._sign(k_region, self._service_name)
            keys.key, keys.scope = self._sign(k_service, "aws4_request"), scope
        return str(self._sign(keys.key, string_to_sign, hex=True))


class _SigV4(_Cheaper, SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    def __init__(self, keys: _Keys, credentials: Any, service: str, region: str) -> None:
        super().__init__(credentials, service, region)
        self._keys = keys


class _S3SigV4(_Cheaper, S3SigV4Auth):  # type: ignore[misc]
    def __init__(self, keys: _Keys, credentials: Any, service: str, region: str) -> None:
        super().__init__(credentials, service, region)
        self._keys = keys


class _Request(AWSRequest):  # type: ignore[misc]
    """botocore's request whose ``body`` (the bytes to hash) is read without preparing a copy."""

    @property
    def body(self) -> Any:
        """The body as botocore's preparer makes it: the bytes, None for none."""
        return self.data or None


class Signer:
    """Signs requests for one client: its credentials, botocore's SigV4 (S3's for S3)."""

    def __init__(self, client: Any) -> None:
        self._signer = client._request_signer
        self._s3 = client.meta.service_model.service_name == "s3"
        self._context = {"client_config": client.meta.config}
        self._keys = _Keys()

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
        request = _Request(method=method, url=url, headers=headers, data=body)
        request.context.update(self._context)
        auth = _S3SigV4 if self._s3 else _SigV4
        auth(self._keys, frozen, endpoint.service, endpoint.region).add_auth(request)
        return dict(request.headers.items())
