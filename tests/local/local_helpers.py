"""Helpers for the emulator's tests: gated models, a tiny model container, S3/SQS plumbing."""

from __future__ import annotations

import http.client
import http.server
import json
import queue
import shlex
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
from botocore.config import Config

INPUT_BUCKET = "emulator-test-inputs"


class GateModel:
    """A sync model that blocks until :meth:`release`; records arrivals in order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = False
        self.arrivals: list[bytes] = []

    def __call__(self, body: bytes, content_type: str | None, accept: str | None) -> bytes:
        with self._cond:
            self.arrivals.append(body)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._open, timeout=30)
        return body

    def wait_arrivals(self, count: int, timeout: float = 10.0) -> None:
        """Block until ``count`` calls have arrived."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.arrivals) >= count, timeout):
                raise TimeoutError(f"only {len(self.arrivals)} of {count} calls arrived")

    def release(self) -> None:
        """Let every current and future call return."""
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def reset(self) -> None:
        """Close the gate again and forget arrivals."""
        with self._cond:
            self._open = False
            self.arrivals.clear()


class _ContainerHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ContainerServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/ping":
            self._reply(200, b"", "text/plain")
        else:
            self._reply(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.path != "/invocations":
            self._reply(404, b"not found", "text/plain")
        elif body == b"fail":
            self._reply(500, b"model exploded", "text/plain")
        elif body == b"bad-request":
            self._reply(400, b"cannot parse", "text/plain")
        elif body == b"chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n0\r\n\r\n")
        else:
            self._reply(200, body.upper(), "application/x-upper")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ContainerServer(http.server.ThreadingHTTPServer):
    """A model container on loopback: ``/ping``; ``/invocations`` upper-cases the body.

    Bodies ``fail`` (500), ``bad-request`` (400) and ``chunked`` (no Content-Length) misbehave.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ContainerHandler)
        self.seen: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def running_container() -> Iterator[ContainerServer]:
    """Start a :class:`ContainerServer` in a thread; shut it down by handle afterwards."""
    server = ContainerServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def client(service: str, env: dict[str, str], **config: Any) -> Any:
    """A sync boto3 client configured only from ``env`` (endpoint URL, region, credentials)."""
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    key = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
    return session.client(service, endpoint_url=env[key], config=Config(**config))


def _supports(member: str) -> bool:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    return member in model.operation_model("InvokeEndpointAsync").input_shape.members


INLINE_BODY = _supports("Body")
"""Whether this botocore can send an inline Body (>= 1.43.29); older lines use InputLocation."""


def submit(runtime: Any, env: dict[str, str], endpoint: str, body: bytes, **kwargs: Any) -> Any:
    """InvokeEndpointAsync with ``body`` inline, or uploaded first where botocore is too old.

    The response gets an extra ``InputLocation`` key (``None`` when the body went inline).
    """
    location = None
    if INLINE_BODY:
        response = runtime.invoke_endpoint_async(EndpointName=endpoint, Body=body, **kwargs)
    else:
        s3 = client("s3", env)
        with suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=INPUT_BUCKET)
        key = f"inline/{uuid.uuid4()}"
        s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=body)
        location = f"s3://{INPUT_BUCKET}/{key}"
        response = runtime.invoke_endpoint_async(
            EndpointName=endpoint, InputLocation=location, **kwargs
        )
    response["InputLocation"] = location
    return response


def split(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``."""
    assert uri.startswith("s3://"), uri
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def get_object(s3: Any, uri: str) -> tuple[bytes, str]:
    """Body and ContentType of an S3 object."""
    bucket, key = split(uri)
    response = s3.get_object(Bucket=bucket, Key=key)
    return response["Body"].read(), response["ContentType"]


def object_exists(s3: Any, uri: str) -> bool:
    """Whether an S3 object exists."""
    bucket, key = split(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey"):
            return False
        raise
    return True


def subscribe_queue(sqs: Any, sns: Any, topic_arn: str, name: str, *, raw: bool) -> str:
    """Create an SQS queue subscribed to ``topic_arn``; return its URL."""
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true" if raw else "false"},
    )
    return url


def receive_all(sqs: Any, url: str) -> list[str]:
    """Every message body now in the queue (deleting them)."""
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def notification(body: str, *, raw: bool) -> dict[str, Any]:
    """The SageMaker notification inside an SQS body (raw or SNS-enveloped)."""
    data: dict[str, Any] = json.loads(body)
    if raw:
        return data
    assert data["Type"] == "Notification"
    inner: dict[str, Any] = json.loads(data["Message"])
    return inner


def raw_invoke(
    url: str,
    endpoint: str,
    headers: dict[str, str],
    body: bytes = b"",
    method: str = "POST",
    path: str | None = None,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """InvokeEndpointAsync (or any request) over plain HTTP; status, headers, JSON body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        target = path or f"/endpoints/{quote(endpoint, safe='')}/async-invocations"
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value.encode("latin-1"))
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(data)
    finally:
        conn.close()


def read_exports(process: subprocess.Popen[str], timeout: float) -> dict[str, str]:
    """The ``export K=V`` lines ``serve`` prints on stdout, up to its ``AWS_SECRET_ACCESS_KEY``."""
    assert process.stdout is not None
    result: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
            if line.startswith("export AWS_SECRET_ACCESS_KEY="):
                break
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        if line is None:
            break
        assert line.startswith("export "), line
        key, _, value = line.removeprefix("export ").strip().partition("=")
        result[key] = shlex.split(value)[0] if value else ""
    assert "AWS_SECRET_ACCESS_KEY" in result, f"serve printed only {sorted(result)}"
    return result


def wait_for_object(s3: Any, uri: str, timeout: float) -> None:
    """Poll HEAD on ``uri`` until it exists; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not object_exists(s3, uri):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{uri} did not appear within {timeout} s")
        time.sleep(0.05)


def receive_until(sqs: Any, url: str, count: int, timeout: float) -> list[str]:
    """Long-poll ``url`` until ``count`` bodies arrived (deleting them); fail at the deadline."""
    bodies: list[str] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"only {len(bodies)} of {count} messages within {timeout} s")
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=max(1, min(5, int(remaining)))
        ).get("Messages", [])
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies
