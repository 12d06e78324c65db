"""Error answers of lean requests, parsed by botocore's own parsers into its own exceptions.

An error is parsed exactly as botocore would (the service's protocol parser, made once per
protocol as a botocore client makes one for its life, ``ResponseMetadata`` with the status and
headers) and raised as the client's modeled exception (``client.exceptions.NoSuchKey`` ...), a
``ClientError`` like botocore's. A probe's GET that misses is one of these, so it stays cheap.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from botocore.awsrequest import HeadersDict
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

__all__ = ["client_error", "response_metadata"]


def response_metadata(status: int, headers: dict[str, str]) -> dict[str, Any]:
    """``ResponseMetadata`` as botocore builds it for a response (headers lowercased)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    metadata: dict[str, Any] = {
        "HTTPStatusCode": status,
        "HTTPHeaders": lowered,
        "RetryAttempts": 0,
    }
    request_id = lowered.get("x-amz-request-id") or lowered.get("x-amzn-requestid")
    if request_id:
        metadata["RequestId"] = request_id
    if "x-amz-id-2" in lowered:
        metadata["HostId"] = lowered["x-amz-id-2"]
    return metadata


@lru_cache(maxsize=8)
def _parser(protocol: str) -> Any:
    """botocore's response parser of ``protocol`` (stateless between responses)."""
    return create_parser(protocol)


def client_error(
    client: Any, operation: str, status: int, headers: dict[str, str], body: bytes
) -> ClientError:
    """The exception botocore raises for this error answer of ``operation``."""
    model = client.meta.service_model.operation_model(operation)
    parser = _parser(client.meta.service_model.protocol)
    response = {
        "status_code": status,
        "headers": HeadersDict(headers),
        "body": body,
        "context": {"operation_name": operation},
    }
    parsed: dict[str, Any] = parser.parse(response, model.output_shape)
    metadata = parsed.setdefault("ResponseMetadata", {})
    for name, value in response_metadata(status, headers).items():
        metadata.setdefault(name, value)
    error = parsed.setdefault("Error", {})
    code = str(error.get("Code") or status)
    error.setdefault("Code", code)
    error.setdefault("Message", "")
    exception: type[ClientError] = client.exceptions.from_code(code)
    return exception(parsed, operation)
