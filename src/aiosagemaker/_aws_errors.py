"""The one place that reads botocore errors: codes, statuses, and what they mean to us.

Every module that catches a botocore ``ClientError`` (or a transport error) asks this module
what it is, instead of reading ``error.response["Error"]["Code"]`` itself:

- :func:`error_code` / :func:`error_message` / :func:`http_status` read the parts;
- :func:`classify` sorts an error into :class:`ErrorKind` (not found, throttled, transient,
  fatal) for the S3 paths;
- :func:`describe_s3_fatal` turns a fatal S3 error into a message that says what to check;
- :func:`classify_submission` tells whether a failed InvokeEndpointAsync may have been
  accepted (:class:`SubmitKind`), and :func:`describe_transport` words a transport error;
- the code sets name the AWS codes the library reacts to.
"""

from __future__ import annotations

import enum

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

__all__ = [
    "ACCESS_DENIED_CODES",
    "MISSING_QUEUE_CODES",
    "NOT_FOUND_CODES",
    "SUBMIT_RETRY_CODES",
    "ErrorKind",
    "SubmitKind",
    "classify",
    "classify_submission",
    "describe_s3_fatal",
    "describe_transport",
    "error_code",
    "error_message",
    "http_status",
    "is_throttle",
]

NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
"""S3 answers for a key that does not exist (yet)."""

MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "403", "Forbidden", "AllAccessDisabled"}
)
THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "503",
        "ServiceUnavailable",
    }
)
TRANSIENT_CODES = frozenset({"RequestTimeout", "InternalError", "500", *THROTTLE_CODES})
MISSING_QUEUE_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)
DENIED_CODES = frozenset({*ACCESS_DENIED_CODES, "InvalidClientTokenId"})
"""Access errors of the SQS/SNS/STS APIs (query protocol codes included)."""
SUBMIT_RETRY_CODES = frozenset(
    {
        "ServiceUnavailable",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
    }
)
"""InvokeEndpointAsync answers that prove the request was turned away (safe to resend)."""


class ErrorKind(enum.Enum):
    """What an S3 error means to a poller."""

    NOT_FOUND = "not found"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    FATAL = "fatal"

    @property
    def retryable(self) -> bool:
        """Throttling and transient errors go away by themselves; the others do not."""
        return self in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT)


def error_code(error: BaseException) -> str | None:
    """The AWS error code of a ``ClientError`` (None for anything else or no code)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "")) or None
    return None


def error_message(error: BaseException) -> str:
    """The AWS error message of a ``ClientError``, else ``str(error)``."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Message", "")) or str(error)
    return str(error)


def http_status(error: BaseException) -> int:
    """The HTTP status of a ``ClientError`` (0 when unknown)."""
    if isinstance(error, ClientError):
        metadata = error.response.get("ResponseMetadata", {})
        return int(metadata.get("HTTPStatusCode", 0) or 0)
    return 0


def is_throttle(error: BaseException) -> bool:
    """Whether S3 asked us to slow down (SlowDown, 503, throttling codes)."""
    return classify(error) is ErrorKind.THROTTLED


_TRANSPORT_ERRORS = (
    HTTPClientError,
    ResponseStreamingError,
    IncompleteReadError,
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionError,
    TimeoutError,
)


def classify(error: BaseException) -> ErrorKind:
    """Sort an exception raised by an S3 call into not-found, throttled, transient or fatal.

    Connection refused, connect and read timeouts and broken streams are transient: an S3
    outage that ends is survived. Access denied, a missing bucket and bad requests are fatal.
    """
    if isinstance(error, ClientError):
        code = error_code(error) or ""
        status = http_status(error)
        if code in NOT_FOUND_CODES:
            return ErrorKind.NOT_FOUND
        if code in THROTTLE_CODES or status in (429, 503):
            return ErrorKind.THROTTLED
        if code in TRANSIENT_CODES or status >= 500:
            return ErrorKind.TRANSIENT
        return ErrorKind.FATAL
    if isinstance(error, ParamValidationError):
        return ErrorKind.FATAL
    if isinstance(error, _TRANSPORT_ERRORS):
        return ErrorKind.TRANSIENT
    if isinstance(error, (BotoCoreError, OSError)):
        return ErrorKind.TRANSIENT
    return ErrorKind.FATAL


def describe_s3_fatal(error: BaseException, uri: object, action: str, bucket: str) -> str:
    """A message for a fatal S3 error on ``uri`` that says what to check or change.

    ``action`` is ``"read"``, ``"write"`` or ``"list"``.
    """
    code = error_code(error)
    if code in ACCESS_DENIED_CODES:
        needed = {"read": "s3:GetObject", "write": "s3:PutObject", "list": "s3:ListBucket"}
        hint = f"Access denied to {action} {uri}. Grant the caller {needed.get(action, action)}"
        if action == "read":
            hint += (
                f" on that key and s3:ListBucket on bucket {bucket!r}: without s3:ListBucket S3 "
                "answers 403 instead of 404 for a key that does not exist yet, so a result "
                "that is still being computed looks like access denied"
            )
        elif action == "write":
            hint += " on that key"
        else:
            hint += f" on bucket {bucket!r}"
        return hint + "."
    if code in MISSING_BUCKET_CODES:
        return (
            f"Bucket {bucket!r} does not exist ({action} {uri}). Check the bucket name, "
            "the region and the S3 endpoint (AWS_ENDPOINT_URL_S3), or create the bucket."
        )
    return f"{action} {uri} failed: {error}"


class SubmitKind(enum.Enum):
    """What a failed InvokeEndpointAsync means for resending it."""

    NOT_STARTED = "not started"
    """It provably never reached the service (connect failed) or was turned away: resend."""
    REJECTED = "rejected"
    """The service refused it (4xx): resending cannot help."""
    UNCERTAIN = "uncertain"
    """It may have been accepted (lost answer, read timeout, a 5xx that proves nothing)."""


def classify_submission(error: BaseException) -> SubmitKind:
    """Sort an error raised by InvokeEndpointAsync by whether the request may have run.

    Connect errors (refused, connect timeout, TLS or proxy set-up), throttling and
    ``ServiceUnavailable`` answered by the service did not start it; other 4xx answers
    rejected it; everything else (read timeout, connection closed or reset once the request
    was sent, other 5xx) leaves it uncertain.
    """
    if isinstance(error, ParamValidationError):
        return SubmitKind.REJECTED
    if isinstance(error, ClientError):
        status = http_status(error)
        if error_code(error) in SUBMIT_RETRY_CODES or status == 429:
            return SubmitKind.NOT_STARTED
        if 400 <= status < 500:
            return SubmitKind.REJECTED
        return SubmitKind.UNCERTAIN
    if isinstance(error, BotoConnectionError):
        return SubmitKind.UNCERTAIN if _connected_before(error) else SubmitKind.NOT_STARTED
    return SubmitKind.UNCERTAIN


def _connected_before(error: BotoCoreError) -> bool:
    """Whether a connection error happened on an open connection (the request may be sent).

    aiobotocore's aiohttp session maps every aiohttp connection error, a reset after sending
    included, to ``EndpointConnectionError``; only ``ClientConnectorError`` means "connect".
    """
    if not isinstance(error, EndpointConnectionError):
        return False
    cause = error.kwargs.get("error")
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiobotocore depends on aiohttp
        return False
    return isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(
        cause, aiohttp.ClientConnectorError
    )


def describe_transport(error: BaseException, what: str) -> str:
    """A message for a transport error (no HTTP answer) while doing ``what``."""
    kind = type(error).__name__
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        hint = (
            "the service could not be reached; check the endpoint URL (AWS_ENDPOINT_URL_*), "
            "the region and the network"
        )
    elif isinstance(error, ReadTimeoutError):
        hint = "the service did not answer in time (client_config read_timeout)"
    else:
        hint = "the connection failed"
    return f"{what} failed: {hint} ({kind}: {error})"
