"""SNS notification messages in the schema of real SageMaker async-inference notifications.

The schema follows real notifications seen in the wild (AWS's documentation shows no full
sample). Choices where the schema is unverified: ``failureLocation`` goes under
``responseParameters`` (with ``contentType`` ``text/plain``); ``responseBody`` is added to error
notifications too when ``ERROR_NOTIFICATION_TOPIC`` is in ``IncludeInferenceResponseIn``, holding
the failure reason.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any

from aiosagemaker._limits import NOTIFICATION_RESPONSE_MAX_BYTES

RESPONSE_BODY_MESSAGE = (
    "Check S3 path location(if configured) or Cloudwatch for additional details."
)


def iso_millis(moment: datetime) -> str:
    """``2024-03-29T03:48:05.077Z``."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _request_parameters(
    endpoint_name: str, input_location: str | None, content_type: str | None, accept: str | None
) -> dict[str, str]:
    params: dict[str, str] = {}
    if accept is not None:
        params["accept"] = accept
    if content_type is not None:
        params["contentType"] = content_type
    params["endpointName"] = endpoint_name
    if input_location is not None:
        params["inputLocation"] = input_location
    return params


def _response_body(content: bytes) -> dict[str, str] | None:
    if len(content) > NOTIFICATION_RESPONSE_MAX_BYTES:
        return None
    return {
        "content": base64.b64encode(content).decode("ascii"),
        "message": RESPONSE_BODY_MESSAGE,
        "encoding": "BASE64",
    }


def build_message(
    *,
    region: str,
    endpoint_name: str,
    inference_id: str,
    received: datetime,
    finished: datetime,
    input_location: str | None,
    content_type: str | None,
    accept: str | None,
    succeeded: bool,
    output_location: str | None = None,
    output_content_type: str | None = None,
    failure_location: str | None = None,
    failure_reason: str | None = None,
    response: bytes | None = None,
) -> str:
    """The JSON ``Message`` of a success (``Completed``) or failure (``Failed``) notification.

    Args:
        response: Bytes to embed as ``responseBody`` (only if ≤ 128 KB), or ``None``.
    """
    message: dict[str, Any] = {
        "awsRegion": region,
        "eventTime": iso_millis(finished),
        "receivedTime": iso_millis(received),
        "invocationStatus": "Completed" if succeeded else "Failed",
        "requestParameters": _request_parameters(
            endpoint_name, input_location, content_type, accept
        ),
    }
    response_parameters: dict[str, str] = {}
    if succeeded:
        response_parameters["contentType"] = output_content_type or "application/octet-stream"
        if output_location is not None:
            response_parameters["outputLocation"] = output_location
    else:
        message["failureReason"] = failure_reason or "ClientError: the invocation failed."
        response_parameters["contentType"] = "text/plain"
        if failure_location is not None:
            response_parameters["failureLocation"] = failure_location
    message["responseParameters"] = response_parameters
    if response is not None:
        body = _response_body(response)
        if body is not None:
            message["responseBody"] = body
    message["inferenceId"] = inference_id
    message["eventVersion"] = "1.0"
    message["eventSource"] = "aws:sagemaker"
    message["eventName"] = "InferenceResult"
    return json.dumps(message, separators=(",", ":"))
