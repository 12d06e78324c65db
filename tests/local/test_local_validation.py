"""Server-side enforcement of every limit and pattern of botocore's InvokeEndpointAsync model.

Requests go over raw HTTP so that limits botocore would already check client-side (min,
required) are tested on the server too; a few go through boto3 to check the error mapping.
"""

from __future__ import annotations

from typing import Any

import pytest

from aiosagemaker._limits import INLINE_BODY_MAX_BYTES
from aiosagemaker.local import LocalEndpoint

from .local_helpers import raw_invoke

LOC = "s3://bucket/key"
P = "X-Amzn-SageMaker-"


CASES: list[tuple[str, str, dict[str, str], bytes, str]] = [
    ("name-too-long", "a" * 64, {P + "InputLocation": LOC}, b"", "'endpointName'"),
    ("name-pattern", "bad_name", {P + "InputLocation": LOC}, b"", "'endpointName'"),
    ("name-leading-dash", "-abc", {P + "InputLocation": LOC}, b"", "'endpointName'"),
    ("content-type-long", "echo", {P + "Content-Type": "a" * 1025}, b"x", "'contentType'"),
    ("content-type-ascii", "echo", {P + "Content-Type": "caf\xe9"}, b"x", "'contentType'"),
    ("accept-long", "echo", {P + "Accept": "a" * 1025}, b"x", "'accept'"),
    ("accept-ascii", "echo", {P + "Accept": "\xe9"}, b"x", "'accept'"),
    ("custom-long", "echo", {P + "Custom-Attributes": "a" * 1025}, b"x", "'customAttributes'"),
    ("custom-ascii", "echo", {P + "Custom-Attributes": "\xe9"}, b"x", "'customAttributes'"),
    ("inference-id-empty", "echo", {P + "Inference-Id": ""}, b"x", "'inferenceId'"),
    ("inference-id-long", "echo", {P + "Inference-Id": "i" * 65}, b"x", "'inferenceId'"),
    ("inference-id-tab", "echo", {P + "Inference-Id": "a\tb"}, b"x", "'inferenceId'"),
    ("inference-id-ascii", "echo", {P + "Inference-Id": "id-\xe9"}, b"x", "'inferenceId'"),
    ("input-empty", "echo", {P + "InputLocation": ""}, b"", "'inputLocation'"),
    ("input-long", "echo", {P + "InputLocation": "s3://b/" + "k" * 1018}, b"", "'inputLocation'"),
    ("input-scheme", "echo", {P + "InputLocation": "ftp://b/k"}, b"", "'inputLocation'"),
    ("ttl-low", "echo", {P + "RequestTTLSeconds": "59"}, b"x", "greater than or equal to 60"),
    ("ttl-high", "echo", {P + "RequestTTLSeconds": "21601"}, b"x", "less than or equal to 21600"),
    ("ttl-not-int", "echo", {P + "RequestTTLSeconds": "soon"}, b"x", "'requestTTLSeconds'"),
    ("timeout-low", "echo", {P + "InvocationTimeoutSeconds": "0"}, b"x", "greater than or"),
    ("timeout-high", "echo", {P + "InvocationTimeoutSeconds": "3601"}, b"x", "less than or"),
    ("ext-empty", "echo", {P + "S3OutputPathExtension": ""}, b"x", "'s3OutputPathExtension'"),
    ("ext-long", "echo", {P + "S3OutputPathExtension": "e" * 513}, b"x", "length less than"),
    ("ext-s3", "echo", {P + "S3OutputPathExtension": "s3://x"}, b"x", "pattern"),
    ("ext-https", "echo", {P + "S3OutputPathExtension": "https:x"}, b"x", "pattern"),
    ("ext-char", "echo", {P + "S3OutputPathExtension": "a b"}, b"x", "pattern"),
    ("file-empty", "echo", {P + "Filename": ""}, b"x", "'filename'"),
    ("file-long", "echo", {P + "Filename": "f" * 33}, b"x", "length less than"),
    ("file-two-dots", "echo", {P + "Filename": "a.b.c"}, b"x", "pattern"),
    ("file-leading-dash", "echo", {P + "Filename": "-a"}, b"x", "pattern"),
    ("file-slash", "echo", {P + "Filename": "a/b"}, b"x", "pattern"),
    ("body-too-big", "echo", {}, b"x" * (INLINE_BODY_MAX_BYTES + 1), "'body'"),
    ("body-and-input", "echo", {P + "InputLocation": LOC}, b"x", "mutually exclusive"),
    ("neither-body-nor-input", "echo", {}, b"", "Either Body or InputLocation"),
]


@pytest.mark.parametrize(
    ("endpoint", "headers", "body", "fragment"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_limit_violations_are_validation_errors(
    emu: LocalEndpoint, endpoint: str, headers: dict[str, str], body: bytes, fragment: str
) -> None:
    before = emu.stats("echo").accepted
    status, response_headers, data = raw_invoke(emu.runtime_url, endpoint, headers, body)
    assert status == 400
    assert response_headers["x-amzn-errortype"] == "ValidationError"
    assert fragment in data["message"], data["message"]
    assert emu.stats("echo").accepted == before


def test_boundary_values_are_accepted(emu: LocalEndpoint) -> None:
    headers = {
        P + "Content-Type": "c" * 1024,
        P + "Accept": "a" * 1024,
        P + "Custom-Attributes": "x" * 1024,
        P + "Inference-Id": "i" * 64,
        P + "RequestTTLSeconds": "60",
        P + "InvocationTimeoutSeconds": "3600",
        P + "S3OutputPathExtension": "e" * 512,
        P + "Filename": "f.x" + "f" * 29,
    }
    status, response_headers, data = raw_invoke(
        emu.runtime_url, "echo", headers, b"b" * INLINE_BODY_MAX_BYTES
    )
    assert status == 202, data
    assert data == {"InferenceId": "i" * 64}
    assert response_headers["x-amzn-sagemaker-outputlocation"].endswith("/" + "f.x" + "f" * 29)
    emu.wait_idle_sync(30)


def test_several_errors_are_reported_together(emu: LocalEndpoint) -> None:
    headers = {P + "RequestTTLSeconds": "1", P + "InvocationTimeoutSeconds": "9999"}
    status, _, data = raw_invoke(emu.runtime_url, "echo", headers, b"x")
    assert status == 400
    assert data["message"] == (
        "2 validation errors detected: Value '1' at 'requestTTLSeconds' failed to satisfy "
        "constraint: Member must have value greater than or equal to 60; Value '9999' at "
        "'invocationTimeoutSeconds' failed to satisfy constraint: Member must have value less "
        "than or equal to 3600"
    )


def test_sensitive_values_are_not_echoed(emu: LocalEndpoint) -> None:
    secret = "s" * 1025
    _, _, data = raw_invoke(emu.runtime_url, "echo", {P + "Custom-Attributes": secret}, b"x")
    assert secret not in data["message"]


def test_boto3_maps_server_side_limits(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationError, match="invocationTimeoutSeconds"):
        runtime.invoke_endpoint_async(
            EndpointName="echo", InputLocation=LOC, InvocationTimeoutSeconds=4000
        )
    with pytest.raises(runtime.exceptions.ValidationError, match="endpointName"):
        runtime.invoke_endpoint_async(EndpointName="x" * 64, InputLocation=LOC)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("POST", "/endpoints/echo/invocations"),
        ("GET", "/endpoints/echo/async-invocations"),
        ("PUT", "/something/else"),
    ],
)
def test_other_paths_are_404_rest_json(emu: LocalEndpoint, method: str, path: str) -> None:
    status, headers, data = raw_invoke(emu.runtime_url, "", {}, method=method, path=path)
    assert status == 404
    assert headers["x-amzn-errortype"] == "UnknownOperationException"
    assert path in data["message"]
