"""upload_extra_args and expected_bucket_owner, checked at the server side (proxy and moto).

moto does not enforce ExpectedBucketOwner, so the header itself is what is checked.
"""

from __future__ import annotations

import io
from typing import Any

import anyio
import pytest

from conftest import BUCKET
from helpers import FAST, key_of, make_predictor
from s3_fault_proxy import S3FaultProxy

pytestmark = pytest.mark.anyio

OWNER = "123456789012"  # moto's account: it owns the test bucket
EXTRA = {
    "ServerSideEncryption": "aws:kms",
    "SSEKMSKeyId": "arn:aws:kms:us-east-1:123456789012:key/test-key",
    "Tagging": "team=ml&cost=gpu",
    "Metadata": {"team": "ml"},
    "StorageClass": "STANDARD_IA",
}
UPLOAD_HEADERS = {
    "x-amz-server-side-encryption": "aws:kms",
    "x-amz-server-side-encryption-aws-kms-key-id": EXTRA["SSEKMSKeyId"],
    "x-amz-tagging": "team=ml&cost=gpu",
    "x-amz-meta-team": "ml",
    "x-amz-storage-class": "STANDARD_IA",
}


def seen(proxy: S3FaultProxy) -> list[tuple[str, str, dict[str, str]]]:
    """Every request the proxy saw: method, path and query, lower-cased headers."""
    return [
        (method, path, {k.lower(): v for k, v in headers.items()})
        for (method, path), headers in zip(proxy.requests, proxy.headers, strict=True)
    ]


class FileSerializer:
    """Serializes bytes to a file object (the path that may go multipart)."""

    CONTENT_TYPE = "application/octet-stream"

    def serialize(self, data: bytes) -> io.BytesIO:
        return io.BytesIO(data)


async def assert_stored_with_extras(s3: Any, key: str) -> None:
    head = await s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["Metadata"] == {"team": "ml"}
    assert head["StorageClass"] == "STANDARD_IA"
    tags = await s3.get_object_tagging(Bucket=BUCKET, Key=key)
    assert {t["Key"]: t["Value"] for t in tags["TagSet"]} == {"team": "ml", "cost": "gpu"}


@pytest.mark.parametrize("detection", ["list", "get"])
async def test_every_request_carries_the_owner_and_uploads_the_extras(
    aws_env: dict[str, str], s3: Any, s3_proxy: S3FaultProxy, detection: str
) -> None:
    async with make_predictor(
        upload_extra_args=EXTRA, expected_bucket_owner=OWNER, detection=detection, inline=False
    ) as predictor:
        response = await predictor.predict_async({"output": "kept"})
        assert await response.get_result(FAST) == "kept"
    requests = seen(s3_proxy)
    methods = {method for method, _, _ in requests}
    assert {"PUT", "GET"} <= methods
    if detection == "list":
        assert any("list-type=2" in path for _, path, _ in requests)
    for method, path, headers in requests:
        assert headers.get("x-amz-expected-bucket-owner") == OWNER, (method, path)
    (put,) = [headers for method, _, headers in requests if method == "PUT"]
    for name, value in UPLOAD_HEADERS.items():
        assert put[name] == value, name
    await assert_stored_with_extras(s3, key_of(predictor_input(requests)))


def predictor_input(requests: list[tuple[str, str, dict[str, str]]]) -> str:
    (path,) = [path for method, path, _ in requests if method == "PUT"]
    return f"s3://{path.lstrip('/').split('?')[0]}"


async def test_file_uploads_single_part_and_multipart_carry_them(
    aws_env: dict[str, str], s3: Any, s3_proxy: S3FaultProxy
) -> None:
    try:
        import aioboto3
    except ImportError:  # the aiobotocore-only line: one PutObject with the file object
        session = None
        size = 64 * 1024
    else:  # aioboto3's upload_fileobj: multipart above its 8 MiB threshold
        session = await anyio.to_thread.run_sync(aioboto3.Session)  # reads config files
        size = 9 * 1024 * 1024
    async with make_predictor(
        session=session,
        serializer=FileSerializer(),
        upload_extra_args=EXTRA,
        expected_bucket_owner=OWNER,
    ) as predictor:
        target = f"s3://{BUCKET}/file-uploads/input.bin"
        await predictor.predict_async(b"x" * size, input_path=target)
    requests = seen(s3_proxy)
    for method, path, headers in requests:
        assert headers.get("x-amz-expected-bucket-owner") == OWNER, (method, path)
    uploads = [(m, p, h) for m, p, h in requests if "/file-uploads/" in p]
    if session is None:
        ((_, _, first),) = uploads
    else:
        first = next(h for m, p, h in uploads if m == "POST" and "uploads" in p)
        parts = [p for m, p, _ in uploads if m == "PUT" and "partNumber=" in p]
        assert len(parts) >= 2
        assert any(m == "POST" and "uploadId=" in p for m, p, _ in uploads)  # completed
    for name, value in UPLOAD_HEADERS.items():
        assert first[name] == value, name
    await assert_stored_with_extras(s3, "file-uploads/input.bin")
