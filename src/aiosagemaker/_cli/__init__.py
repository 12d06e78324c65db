"""The ``aiosagemaker`` command: ``batch``, ``invoke``, ``result`` (and ``local``, the emulator).

Bad input gives one ``aiosagemaker: error: ...`` line on stderr and exit code 2; Ctrl-C stops
a batch cleanly (exit 130) and the same command resumes it. Endpoints, region and credentials
come from the standard AWS variables (``AWS_ENDPOINT_URL_*`` included).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

import anyio
from botocore.exceptions import NoCredentialsError

from .._cli_args import fail
from .._exceptions import AsyncInferenceError, UnexpectedClientError
from ._batch_job import BatchJob, encode_result, retry_policy
from ._errors import REGION_HINT, UserError, leaves, user_message
from ._parser import build_parser

__all__ = ["main"]

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


async def _session(region: str | None) -> Any:
    """An aiobotocore session with a region and credentials, or :class:`UserError`."""
    from aiobotocore.session import get_session

    session = get_session()
    if region:
        session.set_config_variable("region", region)
    elif not session.get_config_variable("region") and os.environ.get("AWS_REGION"):
        session.set_config_variable("region", os.environ["AWS_REGION"])
    if not session.get_config_variable("region"):
        raise UserError(f"no AWS region is configured: {REGION_HINT}")
    if await session.get_credentials() is None:
        raise UserError(user_message(NoCredentialsError()) or "no AWS credentials found")
    return session


def _waiter(timeout: float) -> Any:
    from .._config import WaiterConfig

    return WaiterConfig(max_attempts=None, delay=0.5, backoff=1.5, max_delay=15, timeout=timeout)


async def _batch(args: argparse.Namespace) -> int:
    if args.retry_on and not args.retry:
        fail("--retry-on only chooses which failures --retry N retries; add --retry N")
    job = BatchJob(
        endpoint=args.endpoint,
        input_path=args.input,
        output_path=args.output,
        state_path=args.state or args.output.with_name(args.output.name + ".state.db"),
        concurrency=args.concurrency,
        content_type=args.content_type,
        accept=args.accept,
        bucket=args.bucket,
        waiter_config=_waiter(args.timeout),
        uncertain_wait=args.uncertain_wait,
        resubmit_uncertain=args.resubmit_uncertain,
        retry_failed=args.retry_failed,
        force_new=args.force_new,
        inline=False if args.no_inline else "auto",
        session=await _session(args.region),
        progress=not args.no_progress,
        freeze_gc=True,
        max_failure_ratio=args.max_failure_ratio,
        retry=retry_policy(args.retry, args.retry_on),
        cleanup=args.cleanup,
    )
    started = time.monotonic()
    interrupted = False

    async def on_signal(scope: anyio.CancelScope) -> None:
        nonlocal interrupted
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                interrupted = True
                scope.cancel()
                return

    async with anyio.create_task_group() as group:
        group.start_soon(on_signal, group.cancel_scope)
        try:
            await job.run()
        finally:
            group.cancel_scope.cancel()
    seconds = time.monotonic() - started
    line = f"ok {job.ok}, failed {job.failed}, {seconds:.1f} s"
    if interrupted:
        sys.stderr.write(f"interrupted: {line}; run the same command again to resume\n")
        return EXIT_INTERRUPTED
    if job.stopped:
        sys.stderr.write(
            f"stopped: {line}; {job.stopped} (first error: {job.first_error}); outcomes so far "
            f"in {args.output}. Fix the cause, then run the same command again (add "
            "--retry-failed to resubmit the failed ones)\n"
        )
        return EXIT_FAILED
    if job.ok == 0 and job.failed:
        sys.stderr.write(
            f"failed: {line}; no input succeeded (first error: {job.first_error}); outcomes "
            f"in {args.output}. Fix the cause, then rerun with --retry-failed\n"
        )
        return EXIT_FAILED
    sys.stderr.write(f"done: {line}; outcomes in {args.output}\n")
    return 0


def _payload(args: argparse.Namespace) -> bytes:
    if args.file is not None:
        try:
            return Path(args.file).read_bytes()
        except OSError as error:
            fail(f"cannot read {args.file}: {error.strerror}")
    try:
        json.loads(args.data)
    except ValueError as error:
        fail(f"--data is not JSON: {error}")
    return str(args.data).encode()


async def _invoke(args: argparse.Namespace, data: bytes) -> int:
    from .._predictor import AsyncPredictor
    from ..deserializers import BytesDeserializer
    from ..serializers import IdentitySerializer

    session = await _session(args.region)
    async with AsyncPredictor(
        args.endpoint,
        session=session,
        serializer=IdentitySerializer(args.content_type),
        deserializer=BytesDeserializer(accept=args.accept),
        default_bucket=args.bucket,
        inline=False if args.no_inline else "auto",
    ) as predictor:
        response = await predictor.predict_async(data)
        printed: dict[str, Any] = {
            "inference_id": response.inference_id,
            "output_location": response.output_path,
            "failure_location": response.failure_path,
            "token": response.continuation_token(),
        }
        if args.wait:
            result = await _explained(response.get_result(_waiter(args.timeout)), session)
            printed["result"] = encode_result(result)
    print(json.dumps(printed, ensure_ascii=False))
    return 0


async def _result(args: argparse.Namespace) -> int:
    from .._predictor import AsyncPredictor
    from .._tokens import decode_token, token_key
    from ..deserializers import BytesDeserializer

    state, _ = decode_token(args.token, token_key(None))
    session = await _session(args.region)
    async with AsyncPredictor(
        args.endpoint or state["endpoint_name"], session=session, deserializer=BytesDeserializer()
    ) as predictor:
        response = predictor.response_from_token(args.token)
        result = await _explained(response.get_result(_waiter(args.timeout)), session)
    print(json.dumps(encode_result(result), ensure_ascii=False))
    return 0


async def _explained(waiting: Awaitable[Any], session: Any) -> Any:
    """Await a result; a timeout that does not say why gets the reason of one S3 check."""
    from .._exceptions import PollingTimeoutError

    try:
        return await waiting
    except PollingTimeoutError as error:
        if error.__cause__ is None and error.output_path:
            error.__cause__ = await _check_s3(session, error.output_path)
        raise


async def _check_s3(session: Any, uri: str) -> BaseException | None:
    """Why one HEAD of ``uri`` fails (None: it answered, found or not found)."""
    from aiobotocore.config import AioConfig
    from botocore.exceptions import BotoCoreError, ClientError

    from .._aws_errors import describe_s3_fatal, describe_transport, error_code

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    config = AioConfig(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=5)
    try:
        with anyio.fail_after(15):
            async with session.create_client("s3", config=config) as s3:
                await s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return None
        return UnexpectedClientError(describe_s3_fatal(error, uri, "read", bucket))
    except (BotoCoreError, OSError) as error:
        return UnexpectedClientError(describe_transport(error, f"checking {uri}"))
    return None


def _one_line(error: BaseException) -> str:
    """An error as one line: its type, its message's lines joined, and its chained cause."""
    text = " ".join(str(error).split())
    cause = error.__cause__
    if cause is not None and str(cause) and " ".join(str(cause).split()) not in text:
        text += f" (cause: {type(cause).__name__}: {' '.join(str(cause).split())})"
    return f"{type(error).__name__}: {text}"


def _run(args: argparse.Namespace) -> int:
    if args.command == "batch":
        return anyio.run(_batch, args)
    if args.command == "invoke":
        return anyio.run(_invoke, args, _payload(args))
    return anyio.run(_result, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aiosagemaker`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["local"]:
        try:
            from ..local._cli import main as local_main
        except ImportError as error:
            fail(
                f"the emulator needs the [local] extra ({error}): pip install 'aiosagemaker[local]'"
            )
        return local_main(arguments)
    args = build_parser().parse_args(arguments)
    try:
        return _run(args)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as raised:
        found = leaves(raised)
        for leaf in found:
            message = user_message(leaf)
            if message is not None:
                fail(message)
        for leaf in found:
            if isinstance(leaf, (ValueError, TypeError)):
                fail(_one_line(leaf))
        for leaf in found:
            if isinstance(leaf, AsyncInferenceError):
                fail(_one_line(leaf), EXIT_FAILED)
        raise
