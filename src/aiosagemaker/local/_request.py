"""Parse and validate an InvokeEndpointAsync request against botocore's service model.

botocore only checks ``required`` and ``min`` on the client, so every ``max`` and ``pattern``
of ``sagemaker-runtime`` 2017-05-13 is enforced here. Messages follow AWS's wording:
``1 validation error detected: Value 'x' at 'requestTTLSeconds' failed to satisfy constraint:
Member must have value greater than or equal to 60``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aiosagemaker._limits import (
    ENDPOINT_NAME_MAX,
    FILENAME_MAX,
    HEADER_VALUE_MAX,
    INFERENCE_ID_MAX,
    INLINE_BODY_MAX_BYTES,
    INPUT_LOCATION_MAX,
    INVOCATION_TIMEOUT_SECONDS_DEFAULT,
    INVOCATION_TIMEOUT_SECONDS_MAX,
    INVOCATION_TIMEOUT_SECONDS_MIN,
    REQUEST_TTL_SECONDS_DEFAULT,
    REQUEST_TTL_SECONDS_MAX,
    REQUEST_TTL_SECONDS_MIN,
    S3_OUTPUT_PATH_EXTENSION_MAX,
)

from ._errors import ValidationError

H_CONTENT_TYPE = "X-Amzn-SageMaker-Content-Type"
H_ACCEPT = "X-Amzn-SageMaker-Accept"
H_CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
H_INFERENCE_ID = "X-Amzn-SageMaker-Inference-Id"
H_INPUT_LOCATION = "X-Amzn-SageMaker-InputLocation"
H_TTL = "X-Amzn-SageMaker-RequestTTLSeconds"
H_TIMEOUT = "X-Amzn-SageMaker-InvocationTimeoutSeconds"
H_EXTENSION = "X-Amzn-SageMaker-S3OutputPathExtension"
H_FILENAME = "X-Amzn-SageMaker-Filename"
H_OUTPUT_LOCATION = "X-Amzn-SageMaker-OutputLocation"
H_FAILURE_LOCATION = "X-Amzn-SageMaker-FailureLocation"

ENDPOINT_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
_ASCII = re.compile(r"[\x00-\x7f]*")
_INFERENCE_ID = re.compile(r"\S[\x20-\x7e]*")
_INPUT_LOCATION = re.compile(r"(https|s3)://([^/]+)/?(.*)", re.DOTALL)
_EXTENSION = re.compile(r"(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+")
_FILENAME = re.compile(r"(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9_.-]*")


@dataclass(frozen=True)
class InvocationRequest:
    """A validated InvokeEndpointAsync request."""

    endpoint_name: str
    content_type: str | None
    accept: str | None
    custom_attributes: str | None
    inference_id: str | None
    input_location: str | None
    body: bytes | None
    request_ttl_seconds: int
    invocation_timeout_seconds: int
    s3_output_path_extension: str | None
    filename: str | None


class _Errors:
    """Collects constraint violations in AWS's format."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, member: str, value: str | None, constraint: str) -> None:
        shown = "" if value is None else f" '{value}'"
        self.items.append(
            f"Value{shown} at '{member}' failed to satisfy constraint: Member must {constraint}"
        )

    def check_string(
        self,
        member: str,
        value: str | None,
        *,
        max_len: int,
        min_len: int = 0,
        pattern: re.Pattern[str] | None = None,
        pattern_text: str = "",
        sensitive: bool = False,
    ) -> None:
        if value is None:
            return
        shown = None if sensitive else value
        if len(value) > max_len:
            self.add(member, shown, f"have length less than or equal to {max_len}")
        if len(value) < min_len:
            self.add(member, shown, f"have length greater than or equal to {min_len}")
        if pattern is not None and value and not pattern.fullmatch(value):
            self.add(member, shown, f"satisfy regular expression pattern: {pattern_text}")

    def check_int(self, member: str, raw: str | None, low: int, high: int, default: int) -> int:
        if raw is None:
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            self.add(member, raw, "be an integer")
            return default
        if value < low:
            self.add(member, raw, f"have value greater than or equal to {low}")
        elif value > high:
            self.add(member, raw, f"have value less than or equal to {high}")
        return value

    def raise_if_any(self) -> None:
        if not self.items:
            return
        count = len(self.items)
        noun = "error" if count == 1 else "errors"
        raise ValidationError(f"{count} validation {noun} detected: " + "; ".join(self.items))


def validate_endpoint_name(name: str) -> None:
    """Raise :class:`ValidationError` unless ``name`` is a valid EndpointName."""
    errors = _Errors()
    errors.check_string(
        "endpointName",
        name,
        max_len=ENDPOINT_NAME_MAX,
        min_len=1,
        pattern=ENDPOINT_NAME_PATTERN,
        pattern_text="^[a-zA-Z0-9](-*[a-zA-Z0-9])*",
    )
    errors.raise_if_any()


def parse_request(
    endpoint_name: str, headers: Mapping[str, str], body: bytes | None, body_length: int
) -> InvocationRequest:
    """Validate an InvokeEndpointAsync request.

    Args:
        endpoint_name: The decoded ``{EndpointName}`` from the path.
        headers: The request headers (case-insensitive mapping).
        body: The HTTP body, or ``None`` when it exceeded the limit and was not read.
        body_length: Length of the body in bytes (as declared or read).

    Raises:
        ValidationError: A field breaks a limit or pattern of the service model.
    """
    validate_endpoint_name(endpoint_name)
    errors = _Errors()
    text_fields = {
        "contentType": H_CONTENT_TYPE,
        "accept": H_ACCEPT,
        "customAttributes": H_CUSTOM_ATTRIBUTES,
    }
    values: dict[str, str | None] = {}
    for member, header in text_fields.items():
        value = headers.get(header)
        values[member] = value
        errors.check_string(
            member,
            value,
            max_len=HEADER_VALUE_MAX,
            pattern=_ASCII,
            pattern_text="\\p{ASCII}*",
            sensitive=member == "customAttributes",
        )
    inference_id = headers.get(H_INFERENCE_ID)
    errors.check_string(
        "inferenceId",
        inference_id,
        max_len=INFERENCE_ID_MAX,
        min_len=1,
        pattern=_INFERENCE_ID,
        pattern_text="\\A\\S[\\p{Print}]*\\z",
    )
    input_location = headers.get(H_INPUT_LOCATION)
    errors.check_string(
        "inputLocation",
        input_location,
        max_len=INPUT_LOCATION_MAX,
        min_len=1,
        pattern=_INPUT_LOCATION,
        pattern_text="^(https|s3)://([^/]+)/?(.*)$",
    )
    extension = headers.get(H_EXTENSION)
    errors.check_string(
        "s3OutputPathExtension",
        extension,
        max_len=S3_OUTPUT_PATH_EXTENSION_MAX,
        min_len=1,
        pattern=_EXTENSION,
        pattern_text="^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$",
    )
    filename = headers.get(H_FILENAME)
    errors.check_string(
        "filename",
        filename,
        max_len=FILENAME_MAX,
        min_len=1,
        pattern=_FILENAME,
        pattern_text="^(?!.*\\..*\\.)[a-zA-Z0-9][a-zA-Z0-9-_\\.]*$",
    )
    ttl = errors.check_int(
        "requestTTLSeconds",
        headers.get(H_TTL),
        REQUEST_TTL_SECONDS_MIN,
        REQUEST_TTL_SECONDS_MAX,
        REQUEST_TTL_SECONDS_DEFAULT,
    )
    timeout = errors.check_int(
        "invocationTimeoutSeconds",
        headers.get(H_TIMEOUT),
        INVOCATION_TIMEOUT_SECONDS_MIN,
        INVOCATION_TIMEOUT_SECONDS_MAX,
        INVOCATION_TIMEOUT_SECONDS_DEFAULT,
    )
    if body_length > INLINE_BODY_MAX_BYTES:
        errors.add("body", None, f"have length less than or equal to {INLINE_BODY_MAX_BYTES}")
    errors.raise_if_any()
    has_body = body_length > 0
    if has_body and input_location is not None:
        raise ValidationError(
            "Body and InputLocation are mutually exclusive: specify exactly one of them."
        )
    if not has_body and input_location is None:
        raise ValidationError("Either Body or InputLocation must be specified.")
    return InvocationRequest(
        endpoint_name=endpoint_name,
        content_type=values["contentType"],
        accept=values["accept"],
        custom_attributes=values["customAttributes"],
        inference_id=inference_id,
        input_location=input_location,
        body=body if has_body else None,
        request_ttl_seconds=ttl,
        invocation_timeout_seconds=timeout,
        s3_output_path_extension=extension,
        filename=filename,
    )
