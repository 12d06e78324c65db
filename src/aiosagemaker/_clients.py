"""Creating aiobotocore clients from an aioboto3 or aiobotocore session, and the default bucket."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from xml.etree import ElementTree

import botocore.utils
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.compat import unquote_str
from botocore.exceptions import BotoCoreError, ClientError

from ._aws_errors import describe_transport, error_code
from ._config import check_positive
from ._exceptions import UnexpectedClientError

__all__ = [
    "DEFAULT_MAX_POOL_CONNECTIONS",
    "LISTED_SIZES",
    "ClientFactory",
    "fast_timestamps",
    "lean_listings",
    "parse_timestamp",
]

DEFAULT_MAX_POOL_CONNECTIONS = 64
"""Connection pool per client; botocore's 10 starves a few dozen concurrent waits."""

NO_RETRIES = AioConfig(retries={"total_max_attempts": 1})
"""The SageMaker-runtime client never retries: a resent InvokeEndpointAsync whose answer was
lost runs the inference twice. The library resends only what provably did not start."""


class ClientFactory:
    """Makes clients for one predictor; endpoints and region come from the standard chain.

    Args:
        session: ``aioboto3.Session``, aiobotocore ``AioSession`` or None (a new AioSession).
        client_config: A botocore ``Config`` / ``AioConfig`` merged over the library defaults.
        max_pool_connections: Pool size when ``client_config`` does not set one (default
            :data:`DEFAULT_MAX_POOL_CONNECTIONS`); pass the request concurrency so that the
            pool never holds requests back below it.
    """

    def __init__(
        self,
        session: Any = None,
        client_config: Any = None,
        *,
        max_pool_connections: int | None = None,
    ) -> None:
        if session is not None and not (
            hasattr(session, "create_client") or hasattr(session, "client")
        ):
            raise TypeError(
                "session must be an aioboto3.Session or an aiobotocore AioSession, got "
                f"{type(session).__name__}"
            )
        if client_config is not None and not hasattr(client_config, "merge"):
            raise TypeError(
                "client_config must be a botocore.config.Config or aiobotocore AioConfig, got "
                f"{type(client_config).__name__}"
            )
        self._session = session
        if max_pool_connections is not None:
            check_positive("max_pool_connections", max_pool_connections, integer=True)
        config = AioConfig(
            max_pool_connections=max_pool_connections or DEFAULT_MAX_POOL_CONNECTIONS
        )
        self.config: AioConfig = config if client_config is None else config.merge(client_config)

    @property
    def max_pool_connections(self) -> int:
        """Connection pool size of each client this factory makes."""
        return int(self.config.max_pool_connections)

    def client(
        self, service: str, *, extra_connections: int = 0
    ) -> AbstractAsyncContextManager[Any]:
        """An async context manager yielding an open aiobotocore client for ``service``.

        ``sagemaker-runtime`` gets no botocore retries, whatever ``client_config`` says.
        ``extra_connections`` enlarges this client's pool beyond :attr:`max_pool_connections`.
        """
        if self._session is None:
            self._session = get_session()
        config = self.config.merge(NO_RETRIES) if service == "sagemaker-runtime" else self.config
        if extra_connections:
            pool = self.max_pool_connections + extra_connections
            config = config.merge(AioConfig(max_pool_connections=pool))
        if hasattr(self._session, "create_client"):  # aiobotocore AioSession
            return self._session.create_client(service, config=config)  # type: ignore[no-any-return]
        return self._session.client(service, config=config)  # type: ignore[no-any-return]

    async def default_bucket(self, s3: Any, *, create: bool) -> str:
        """``sagemaker-{region}-{account}`` (account from STS), created only if ``create``."""
        region = s3.meta.region_name
        try:
            async with self.client("sts") as sts:
                identity = await sts.get_caller_identity()
        except (BotoCoreError, ClientError) as error:
            raise UnexpectedClientError(
                f"could not find the AWS account for the default bucket ({error}); pass "
                "default_bucket='my-bucket' to AsyncPredictor"
            ) from error
        bucket = f"sagemaker-{region}-{identity['Account']}"
        try:
            await s3.head_bucket(Bucket=bucket)
            return bucket
        except BotoCoreError as error:
            raise UnexpectedClientError(
                describe_transport(error, f"checking the default bucket {bucket!r}")
            ) from error
        except ClientError as error:
            code = error_code(error) or ""
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise UnexpectedClientError(
                    f"cannot use the default bucket {bucket!r}: {error}. Pass "
                    "default_bucket='my-bucket' to AsyncPredictor",
                    code=code,
                ) from error
        if not create:
            raise UnexpectedClientError(
                f"the default bucket {bucket!r} does not exist. Create it, pass "
                "default_bucket='my-bucket', or pass create_default_bucket=True to let "
                "AsyncPredictor create it",
                code="NoSuchBucket",
            )
        params: dict[str, Any] = {"Bucket": bucket}
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await s3.create_bucket(**params)
        except BotoCoreError as error:
            raise UnexpectedClientError(
                describe_transport(error, f"creating the default bucket {bucket!r}")
            ) from error
        except ClientError as error:
            code = error_code(error) or ""
            if code not in ("BucketAlreadyOwnedByYou",):
                raise UnexpectedClientError(
                    f"could not create the default bucket {bucket!r}: {error}", code=code
                ) from error
        return bucket


def parse_timestamp(value: Any) -> datetime:
    """Parse an S3 timestamp with the standard library (botocore's own parser as a fallback).

    S3 sends ISO 8601 in XML (``2026-01-01T00:00:00.000Z``) and RFC 1123 in headers; both are
    read here at a fraction of the CPU of botocore's dateutil-based parser.
    """
    if isinstance(value, str):
        try:
            if value.endswith("Z"):
                return datetime.fromisoformat(value[:-1]).replace(tzinfo=timezone.utc)
            if "," in value:
                return parsedate_to_datetime(value)
        except (TypeError, ValueError):
            pass
    parsed: datetime = botocore.utils.parse_timestamp(value)
    return parsed


def fast_timestamps(client: Any) -> None:
    """Make ``client`` (one of the library's own) parse timestamps with :func:`parse_timestamp`.

    A LIST page carries 1,000 ``LastModified`` values; botocore parses each with dateutil,
    which is most of the page's CPU. The client gets a private copy of its session's parser
    factory, so other clients of the session are untouched; with an unexpected botocore
    layout nothing is changed.
    """
    endpoint = getattr(client, "_endpoint", None)
    factory = getattr(endpoint, "_response_parser_factory", None)
    defaults = getattr(factory, "_defaults", None)
    if factory is None or not isinstance(defaults, dict):
        return
    private = type(factory)()
    if not isinstance(getattr(private, "_defaults", None), dict):
        return
    private._defaults = {**defaults, "timestamp_parser": parse_timestamp}
    endpoint._response_parser_factory = private  # type: ignore[union-attr]


LISTED_SIZES = "AiosagemakerListedSizes"
"""Where :func:`lean_listings` puts a ListObjectsV2 page's ``{key: size}`` in the response."""


def lean_listings(client: Any) -> None:
    """Make ``client`` (one of the library's own) read ListObjectsV2 pages cheaply.

    botocore's XML parser spends about 30 us per listed key (a dict per object, every field
    converted); the waiting engine needs only each key and its size. Before botocore parses a
    page, a handler reads those with ElementTree (about 4 us per key), puts them in the
    response under :data:`LISTED_SIZES` and leaves botocore the page without its objects. A
    page it cannot read is left to botocore as it is.
    """
    client.meta.events.register("before-parse.s3.ListObjectsV2", _lean_listing)


def _lean_listing(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    body = response_dict.get("body")
    if response_dict.get("status_code") != 200 or not isinstance(body, bytes):
        return
    try:
        root = ElementTree.fromstring(body)
        # S3's namespace, or none (some S3-compatible servers leave it out)
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        if root.tag != f"{ns}ListBucketResult":
            return
        # botocore asks for url-encoded keys and decodes them after parsing: do as it does
        encoded = root.findtext(f"{ns}EncodingType") == "url"
        sizes: dict[str, int] = {}
        contents = root.findall(f"{ns}Contents")
        for item in contents:
            key = item.findtext(f"{ns}Key")
            if key is None:
                return
            sizes[unquote_str(key) if encoded else key] = int(item.findtext(f"{ns}Size") or 0)
        for item in contents:
            root.remove(item)
        lean = ElementTree.tostring(root)
    except (ElementTree.ParseError, ValueError):
        return
    response_dict["body"] = lean
    customized_response_dict[LISTED_SIZES] = sizes
