"""The lean transport (``transport="lean"``): the hot calls on aiohttp, signed by botocore.

Each behaviour is checked on both built-in transports against real servers on loopback:
moto (through the recording fault proxy), the emulator's runtime, and a small server here
that verifies SigV4 signatures with botocore's own computation, as AWS does (moto does not
check signatures unless its IAM auth is switched on for the whole process).
"""

from __future__ import annotations

import gc
import hashlib
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioRefreshableCredentials
from aiobotocore.session import AioSession, get_session
from aiohttp import web
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from aiosagemaker import AsyncPredictor
from aiosagemaker._aws_errors import ErrorKind, SubmitKind, classify, classify_submission
from aiosagemaker._clients import ClientFactory
from aiosagemaker._config import S3Options
from aiosagemaker._lean import LeanRuntime, LeanS3Client
from aiosagemaker._lean._signing import resolve_endpoint
from aiosagemaker._s3 import S3Uri, read_all
from aiosagemaker._transport import TRANSPORT_ENV, Transport, open_transport
from conftest import BUCKET
from helpers import make_predictor
from s3_fault_proxy import Fault, S3FaultProxy

pytestmark = pytest.mark.anyio

NAMES = ["lean", "botocore"]
SECRET = "verifying-secret"
INVOKE = "/async-invocations"


@asynccontextmanager
async def transport(
    name: str, session: Any = None, attempts: int = 1, **options: Any
) -> AsyncIterator[Transport]:
    """A built-in transport as a predictor opens it (no retries of its own; the clients'
    retries: ``attempts``)."""
    throttles: list[int] = []
    async with AsyncExitStack() as stack:
        made = await open_transport(
            ClientFactory(session, AioConfig(retries={"total_max_attempts": attempts})),
            stack,
            limit=8,
            max_retries=0,
            on_throttle=lambda: throttles.append(1),
            on_request=None,
            options=S3Options(**options),
            name=name,  # type: ignore[arg-type]
        )
        made.s3.throttles = throttles  # type: ignore[attr-defined]
        yield made


class VerifyingServer:
    """Answers S3 and runtime requests only when their SigV4 signature is the one botocore
    computes for the same request with :data:`SECRET`; records the access keys it saw."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.agents: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _valid(self, request: web.Request, body: bytes) -> bool:
        authorization = request.headers.get("Authorization", "")
        fields = dict(
            part.strip().split("=", 1) for part in authorization.split(" ", 1)[-1].split(",")
        )
        key, _, region, service, _ = fields["Credential"].split("/")
        self.keys.append(key)
        signed = fields["SignedHeaders"].split(";")
        headers = {name: request.headers[name] for name in signed if name != "host"}
        copy = AWSRequest(
            method=request.method,
            url=f"http://{request.host}{request.raw_path}",
            headers=headers,
            data=body,
        )
        copy.context["timestamp"] = request.headers["X-Amz-Date"]
        auth_class = S3SigV4Auth if service == "s3" else SigV4Auth
        auth = auth_class(Credentials(key, SECRET), service, region)
        if service == "s3" and headers.get("x-amz-content-sha256") not in (
            hashlib.sha256(body).hexdigest(),
            "UNSIGNED-PAYLOAD",
        ):
            return False
        string = auth.string_to_sign(copy, auth.canonical_request(copy))
        return bool(fields["Signature"] == auth.signature(string, copy))

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.agents.append(request.headers.get("User-Agent", ""))
        if not self._valid(request, body):
            if request.path.endswith(INVOKE):
                error = {"__type": "InvalidSignatureException", "message": "bad signature"}
                return web.json_response(error, status=403)
            document = (
                "<Error><Code>SignatureDoesNotMatch</Code><Message>bad signature</Message></Error>"
            )
            return web.Response(status=403, body=document, content_type="application/xml")
        if request.path.endswith(INVOKE):
            headers = {"X-Amzn-SageMaker-OutputLocation": "s3://out/result.out"}
            return web.json_response({"InferenceId": "id"}, status=202, headers=headers)
        if request.method == "PUT":
            return web.Response(headers={"ETag": '"etag"'})
        if "list-type=2" in request.query_string:
            page = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"
            return web.Response(body=page, content_type="application/xml")
        return web.Response(body=b"hello", content_type="text/plain")


@pytest.fixture
async def verifying(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[VerifyingServer]:
    server = VerifyingServer()
    await server.start()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ENDPOINT_URL_S3": server.url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server.url,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "AKIDVERIFY",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield server
    finally:
        await server.stop()


async def hot_calls(made: Transport) -> None:
    """PutObject, GetObject, a LIST page and InvokeEndpointAsync, once each."""
    uri = S3Uri("bucket", "dir/a key é+%.bin")
    await made.s3.put(uri, b"payload", "application/octet-stream")
    fetched = await made.s3.get_once(uri, read_all)
    assert fetched is not None
    assert fetched.value == b"hello"
    page = await made.s3.list_page("bucket", "dir/")
    assert page.next_token is None
    answer = await made.runtime.invoke_endpoint_async(
        EndpointName="my endpoint", InputLocation="s3://b/k", ContentType="application/json"
    )
    assert answer["OutputLocation"] == "s3://out/result.out"


@pytest.mark.parametrize("name", NAMES)
async def test_signatures_are_botocores(name: str, verifying: VerifyingServer) -> None:
    async with transport(name) as made:
        await hot_calls(made)
    assert verifying.keys == ["AKIDVERIFY"] * 4
    sender = "aiohttp" if name == "lean" else "Botocore"
    assert all(sender in agent for agent in verifying.agents)


@pytest.mark.parametrize("name", NAMES)
async def test_a_wrong_secret_is_rejected(
    name: str, verifying: VerifyingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    async with transport(name) as made:
        with pytest.raises(ClientError) as read:
            await made.s3.get_once(S3Uri("bucket", "key"), read_all)
        with pytest.raises(ClientError) as invoke:
            await made.runtime.invoke_endpoint_async(EndpointName="e", InputLocation="s3://b/k")
    assert read.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert read.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert classify(read.value) is ErrorKind.FATAL
    assert invoke.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert classify_submission(invoke.value) is SubmitKind.REJECTED


@pytest.mark.parametrize("name", NAMES)
async def test_refreshed_credentials_sign_every_request(
    name: str, verifying: VerifyingServer
) -> None:
    refreshes: list[int] = []

    async def refresh() -> dict[str, str]:
        refreshes.append(1)
        # expiring within botocore's mandatory refresh window: refreshed before every use
        expiry = datetime.now(timezone.utc) + timedelta(minutes=1)
        return {
            "access_key": f"AKIDREFRESH{len(refreshes)}",
            "secret_key": SECRET,
            "token": "",
            "expiry_time": expiry.isoformat(),
        }

    credentials = AioRefreshableCredentials.create_from_metadata(
        await refresh(), refresh_using=refresh, method="test"
    )
    session = AioSession()
    session._credentials = credentials
    async with transport(name, session) as made:
        before = len(refreshes)
        await hot_calls(made)
    assert len(refreshes) - before >= 4
    assert len(set(verifying.keys)) == 4  # each request signed with newly refreshed keys


async def test_lean_is_chosen_by_name_or_environment(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_predictor(transport="lean") as predictor:
        assert isinstance(predictor._transport.client, LeanS3Client)  # type: ignore[union-attr]
        assert isinstance(predictor._runtime, LeanRuntime)
    monkeypatch.setenv(TRANSPORT_ENV, "botocore")
    async with make_predictor() as predictor:
        assert not isinstance(predictor._transport.client, LeanS3Client)  # type: ignore[union-attr]
    monkeypatch.setenv(TRANSPORT_ENV, "lean")
    async with make_predictor() as predictor:
        assert isinstance(predictor._runtime, LeanRuntime)


def test_transport_names_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="'lean' or 'botocore'"):
        AsyncPredictor("e", transport="fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'lean', 'botocore', an aiosagemaker Transport"):
        AsyncPredictor("e", transport=3)  # type: ignore[arg-type]
    monkeypatch.setenv(TRANSPORT_ENV, "curl")
    with pytest.raises(ValueError, match=f"{TRANSPORT_ENV} must be 'lean' or 'botocore'"):
        AsyncPredictor("e")


@pytest.mark.parametrize("name", NAMES)
async def test_owner_and_upload_arguments_are_sent(
    name: str, aws_env: dict[str, str], s3_proxy: S3FaultProxy, s3: Any
) -> None:
    uri = S3Uri(BUCKET, f"lean/{uuid.uuid4()}")
    extra = {"Metadata": {"team": "ml"}, "StorageClass": "STANDARD_IA", "Tagging": "a=b"}
    async with transport(
        name, upload_extra_args=extra, expected_bucket_owner="123456789012"
    ) as made:
        await made.s3.put(uri, b"x", "text/plain")
        assert await made.s3.get_once(uri, read_all) is not None
        await made.s3.list_page(BUCKET, uri.key)
    seen = [{k.lower(): v for k, v in headers.items()} for headers in s3_proxy.headers]
    assert [headers.get("x-amz-expected-bucket-owner") for headers in seen] == ["123456789012"] * 3
    assert seen[0]["x-amz-meta-team"] == "ml"
    assert seen[0]["x-amz-tagging"] == "a=b"
    # which HTTP client sent them: the lean path's requests are aiohttp's own
    sender = "aiohttp" if name == "lean" else "Botocore"
    assert all(sender in headers["user-agent"] for headers in seen)
    head = await s3.head_object(Bucket=BUCKET, Key=uri.key)
    assert head["Metadata"] == {"team": "ml"}
    assert head["StorageClass"] == "STANDARD_IA"


@pytest.mark.parametrize("name", NAMES)
async def test_s3_errors_are_botocores(
    name: str, aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    async with transport(name) as made:
        with pytest.raises(ClientError) as missing:
            await made.s3.get_once(S3Uri("no-such-bucket-lean", "key"), read_all)
        assert await made.s3.get_once(S3Uri(BUCKET, f"missing/{uuid.uuid4()}"), read_all) is None
        s3_proxy.add(Fault("GET", "/denied", status=403, code="AccessDenied"))
        with pytest.raises(ClientError) as denied:
            await made.s3.get_once(S3Uri(BUCKET, "denied"), read_all)
        s3_proxy.add(Fault("PUT", "/slow", status=503, code="SlowDown"))
        with pytest.raises(Exception, match="SlowDown"):
            await made.s3.put(S3Uri(BUCKET, "slow"), b"x", "text/plain")
        assert made.s3.throttles == [1]  # type: ignore[attr-defined]
    assert missing.value.response["Error"]["Code"] == "NoSuchBucket"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert type(missing.value).__name__ == "NoSuchBucket"
    assert denied.value.response["Error"] == {
        "Code": "AccessDenied",
        "Message": "injected AccessDenied",
        "Resource": "/aiosagemaker-tests/denied",
    }
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize("name", NAMES)
async def test_s3_requests_are_retried_as_the_clients_retry_config_says(
    name: str, aws_env: dict[str, str], s3_proxy: S3FaultProxy, s3: Any
) -> None:
    key = f"retried/{uuid.uuid4()}"
    await s3.put_object(Bucket=BUCKET, Key=key, Body=b"after two SlowDowns")
    s3_proxy.add(Fault("GET", key, status=503, code="SlowDown", times=2))
    async with transport(name, attempts=3) as made:
        fetched = await made.s3.get_once(S3Uri(BUCKET, key), read_all)
    assert fetched is not None and fetched.value == b"after two SlowDowns"
    assert s3_proxy.count("GET", key) == 3
    s3_proxy.add(Fault("PUT", key, status=500, code="InternalError", times=1))
    async with transport(name, attempts=2) as made:
        await made.s3.put(S3Uri(BUCKET, key), b"after a 500", "text/plain")
    s3_proxy.add(Fault("GET", key, reset=True))
    async with transport(name, attempts=2) as made:
        with pytest.raises(ConnectionClosedError):
            await made.s3.get_once(S3Uri(BUCKET, key), read_all)


async def test_a_lean_miss_leaves_no_garbage_cycle(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy
) -> None:
    """A GET that misses (a waiting probe's 404) is freed by reference counting: its error
    is not kept alive by a frame of its own traceback for the cyclic GC to find."""
    async with transport("lean") as made:
        uri = S3Uri(BUCKET, f"missing/{uuid.uuid4()}")
        assert await made.s3.get_once(uri, read_all) is None  # clients and parsers made
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(3):
                assert await made.s3.get_once(uri, read_all) is None
            gc.collect()
            left = [o for o in gc.garbage if isinstance(o, ClientError)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert left == []


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("name", NAMES)
async def test_connection_errors_tell_sent_from_not_sent(
    name: str,
    aws_env: dict[str, str],
    runtime_proxy: S3FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = {"EndpointName": "scripted", "InputLocation": f"s3://{BUCKET}/none"}
    runtime_proxy.add(Fault("POST", INVOKE, after_forward="drop", times=1))
    async with transport(name) as made:
        with pytest.raises((ConnectionClosedError, EndpointConnectionError)) as reset:
            await made.runtime.invoke_endpoint_async(**args)
    assert classify_submission(reset.value) is SubmitKind.UNCERTAIN
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{refused_port()}")
    async with transport(name) as made:
        with pytest.raises(EndpointConnectionError) as refused:
            await made.runtime.invoke_endpoint_async(**args)
    assert classify_submission(refused.value) is SubmitKind.NOT_STARTED


@pytest.mark.parametrize("name", NAMES)
async def test_listed_keys_are_decoded(name: str, aws_env: dict[str, str], s3: Any) -> None:
    prefix = f"lean-list/{uuid.uuid4()}/"
    keys = [f"{prefix}with space", f"{prefix}ünï cødé/€", f"{prefix}a+b&c<d>%20"]
    async with transport(name) as made:
        for index, key in enumerate(keys):
            await made.s3.put(S3Uri(BUCKET, key), b"x" * index, "text/plain")
        page = await made.s3.list_page(BUCKET, prefix)
    assert page.sizes == {key: index for index, key in enumerate(keys)}
    assert page.next_token is None


async def test_listing_pages_carry_the_continuation_token(aws_env: dict[str, str]) -> None:
    prefix = f"lean-pages/{uuid.uuid4()}/"
    async with transport("lean") as made:
        for index in range(3):
            await made.s3.put(S3Uri(BUCKET, f"{prefix}{index}"), b"x", "text/plain")
        client = made.s3.client
        first = await client.list_objects_v2(Bucket=BUCKET, Prefix=prefix, MaxKeys=2)
        rest = await client.list_objects_v2(
            Bucket=BUCKET,
            Prefix=prefix,
            MaxKeys=2,
            ContinuationToken=first["NextContinuationToken"],
        )
    assert first["IsTruncated"] is True
    assert len(first["AiosagemakerListedSizes"]) == 2
    assert rest["IsTruncated"] is False
    assert len(rest["AiosagemakerListedSizes"]) == 1


@pytest.mark.parametrize(
    ("endpoint_url", "config", "expected"),
    [
        (None, None, "https://my-bucket.s3.eu-west-1.amazonaws.com"),
        (None, {"addressing_style": "path"}, "https://s3.eu-west-1.amazonaws.com/my-bucket"),
        ("http://127.0.0.1:9000", None, "http://127.0.0.1:9000/my-bucket"),
        (
            "http://s3.example.test",
            {"addressing_style": "virtual"},
            "http://my-bucket.s3.example.test",
        ),
    ],
)
async def test_addressing_is_botocores(
    endpoint_url: str | None, config: dict[str, str] | None, expected: str
) -> None:
    async with get_session().create_client(
        "s3",
        region_name="eu-west-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="a",
        aws_secret_access_key="b",
        config=AioConfig(s3=config),
    ) as client:
        endpoint = await resolve_endpoint(client, "GetObject", {"Bucket": "my-bucket", "Key": "k"})
    assert endpoint is not None
    assert endpoint.url == expected


async def test_a_bucket_redirected_elsewhere_is_left_to_botocore(
    aws_env: dict[str, str], s3_proxy: S3FaultProxy, s3: Any
) -> None:
    key = f"lean-redirect/{uuid.uuid4()}"
    await s3.put_object(Bucket=BUCKET, Key=key, Body=b"here")
    s3_proxy.reset()
    s3_proxy.add(Fault("GET", key, status=301, code="PermanentRedirect", times=1))
    async with transport("lean") as made:
        fetched = await made.s3.get_once(S3Uri(BUCKET, key), read_all)
        assert fetched is not None
        assert fetched.value == b"here"
        await made.s3.get_once(S3Uri(BUCKET, key), read_all)
    agents = [headers["User-Agent"] for headers in s3_proxy.headers]
    assert len(agents) == 3
    assert "aiohttp" in agents[0]
    assert all("Botocore" in agent for agent in agents[1:])  # botocore's redirector's now
