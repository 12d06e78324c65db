"""SageMaker async-inference notifications as they arrive over SQS: parsing and routing keys.

:func:`parse_message` turns one SQS message body (raw SNS delivery or the SNS JSON envelope)
into a :class:`Notification`, tolerating both places a failure location may appear.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from .._s3 import S3Uri

__all__ = ["Key", "Notification", "UnrecognizedMessageError", "parse_message"]

logger = logging.getLogger("aiosagemaker")

Key = tuple[str, str]
"""A routing key: ("output", uri), ("failure", uri) or ("id", inference id)."""


class UnrecognizedMessageError(ValueError):
    """An SQS message that is not a usable SageMaker notification.

    ``kind`` is ``"malformed"`` (not JSON, or a SageMaker notification missing what routing
    needs) or ``"foreign"`` (valid JSON from something else, e.g. an SNS subscription
    confirmation or another service's event).
    """

    def __init__(self, kind: Literal["malformed", "foreign"], reason: str) -> None:
        super().__init__(f"{kind} message: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Notification:
    """One SageMaker async-inference notification, as far as routing and results need it."""

    succeeded: bool
    inference_id: str | None
    output_location: str | None
    failure_location: str | None
    failure_reason: str | None = None
    content_type: str | None = None
    body: bytes | None = None
    """The inline response (``responseBody.content``, decoded), if the endpoint includes it."""

    def routing_keys(self) -> list[Key]:
        """Routing keys, most specific first."""
        keys: list[Key] = []
        if self.succeeded and self.output_location:
            keys.append(("output", self.output_location))
        if not self.succeeded and self.failure_location:
            keys.append(("failure", self.failure_location))
        if self.inference_id:
            keys.append(("id", self.inference_id))
        return keys


def _location(value: Any) -> str | None:
    """A location normalised like ``str(S3Uri)``; other strings are kept as they are."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return str(S3Uri.parse(value))
    except ValueError:
        return value


def _inline_body(document: dict[str, Any]) -> bytes | None:
    body = document.get("responseBody")
    if not isinstance(body, dict) or not isinstance(body.get("content"), str):
        return None
    if str(body.get("encoding", "BASE64")).upper() != "BASE64":
        return None
    try:
        return base64.b64decode(body["content"], validate=True)
    except (binascii.Error, ValueError):
        logger.warning("ignoring an inline responseBody that is not valid base64")
        return None


def _json(text: Any, what: str) -> dict[str, Any]:
    if not isinstance(text, str):
        raise UnrecognizedMessageError("malformed", f"{what} is not a string")
    try:
        document = json.loads(text)
    except ValueError:
        raise UnrecognizedMessageError("malformed", f"{what} is not JSON") from None
    if not isinstance(document, dict):
        raise UnrecognizedMessageError("malformed", f"{what} is not a JSON object")
    return document


def parse_message(body: str) -> Notification:
    """Parse an SQS message body: raw delivery or the SNS envelope, success or failure.

    ``failureLocation`` is read at the top level and under ``responseParameters``.

    Raises:
        UnrecognizedMessageError: The body is malformed or not a SageMaker notification.
    """
    document = _json(body, "the message body")
    if "Type" in document and "Message" in document:
        if document["Type"] != "Notification":
            raise UnrecognizedMessageError("foreign", f"SNS {document['Type']!r} message")
        document = _json(document["Message"], "the SNS Message")
    status = document.get("invocationStatus")
    if status is None or document.get("eventSource", "aws:sagemaker") != "aws:sagemaker":
        raise UnrecognizedMessageError("foreign", "not a SageMaker async inference notification")
    if status not in ("Completed", "Failed"):
        raise UnrecognizedMessageError("malformed", f"unknown invocationStatus {status!r}")
    parameters = document.get("responseParameters") or {}
    if not isinstance(parameters, dict):
        raise UnrecognizedMessageError("malformed", "responseParameters is not an object")
    inference_id = document.get("inferenceId")
    inference_id = inference_id if isinstance(inference_id, str) and inference_id else None
    failure = _location(document.get("failureLocation")) or _location(
        parameters.get("failureLocation")
    )
    notification = Notification(
        succeeded=status == "Completed",
        inference_id=inference_id,
        output_location=_location(parameters.get("outputLocation")),
        failure_location=failure,
        failure_reason=document.get("failureReason")
        if isinstance(document.get("failureReason"), str)
        else None,
        content_type=parameters.get("contentType")
        if isinstance(parameters.get("contentType"), str)
        else None,
        body=_inline_body(document) if status == "Completed" else None,
    )
    if not notification.routing_keys():
        raise UnrecognizedMessageError("malformed", "no inferenceId and no result location")
    return notification
