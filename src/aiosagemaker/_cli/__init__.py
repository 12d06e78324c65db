"""The ``aiosagemaker`` command: ``batch``, ``invoke``, ``result`` (and ``local``, the emulator).

Bad input gives one ``aiosagemaker: error: ...`` line on stderr and exit code 2; Ctrl-C stops
a batch cleanly (exit 130) and the same command resumes it. Endpoints, region and credentials
come from the standard AWS variables (``AWS_ENDPOINT_URL_*`` included).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

import anyio
from botocore.exceptions import NoCredentialsError

from .._cli_args import OneLineParser, fail, non_negative_int, positive_int
from .._exceptions import AsyncInferenceError, UnexpectedClientError
from ._batch_job import MIN_OUTCOMES_FOR_RATIO, BatchJob, encode_result, retry_policy
from ._errors import REGION_HINT, UserError, leaves, user_message

__all__ = ["main"]

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


EXIT_CODES = """\
exit codes:
  0    done (batch: every input has an outcome, and at least one succeeded or there were none)
  1    batch: no input succeeded (fix the cause, rerun with --retry-failed), or it stopped
       at --max-failure-ratio; other commands: the inference failed or timed out
  2    bad usage or a failure you can fix (bad input, a state file of another batch or in
       use by another process, a changed input, disk full, no region or credentials): one
       line on stderr says which and what to do
  130  interrupted (Ctrl-C, SIGTERM); the same command resumes a batch
"""


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 0 and < 1, got {text}")
    return value


def _pattern(text: str) -> str:
    try:
        re.compile(text)
    except re.error as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid regular expression ({error})"
        ) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The client commands' parser (``local`` is handed to the emulator's)."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = OneLineParser(
        prog="aiosagemaker", description="aiosagemaker tools", epilog=EXIT_CODES,
        formatter_class=raw,
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    commands.add_parser("local", help="the local async-endpoint emulator (aiosagemaker[local])")

    batch = commands.add_parser(
        "batch",
        help="a durable, resumable batch over a JSONL file",
        description=(
            "Submit every line of INPUT (one JSON payload per line; blank lines are skipped\n"
            "and keep their line numbers: index = line number - 1) to ENDPOINT, and write one\n"
            "outcome per input to --output, in input order. The state file records every\n"
            "submission: the same command again resumes. One process at a time per state file."
        ),
        epilog=EXIT_CODES,
        formatter_class=raw,
    )
    batch.add_argument("endpoint", help="the async endpoint's name")
    batch.add_argument("input", type=Path, help="JSONL file: one JSON payload per line (UTF-8)")
    batch.add_argument(
        "--output",
        type=Path,
        required=True,
        help="JSONL file of outcomes, written (atomically) when the run ends; never the input",
    )
    batch.add_argument(
        "--state", type=Path, help="state file (SQLite; default: OUTPUT.state.db, locked via "
        "STATE.lock while a run holds it)"
    )  # fmt: skip
    _request_options(batch)
    batch.add_argument(
        "--timeout",
        type=_seconds,
        default=900,
        help="seconds each inference may take once submitted (default: %(default)s)",
    )
    batch.add_argument(
        "--uncertain-wait",
        type=_seconds,
        default=300,
        help="seconds to wait for the result of a submission whose response was lost "
        "(default: %(default)s)",
    )
    batch.add_argument(
        "--concurrency",
        type=positive_int,
        default=64,
        help="inferences submitted and not yet finished at a time (default: %(default)s)",
    )
    batch.add_argument(
        "--resubmit-uncertain",
        action="store_true",
        help="submit again the inputs whose submission's outcome is unknown (may duplicate), "
        "also after the batch finished",
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="submit again the inputs whose outcome is a definite error (never the uncertain "
        "ones, unless --resubmit-uncertain); each gets a new inference id",
    )
    batch.add_argument(
        "--force-new",
        action="store_true",
        help="discard the state file and start the batch over (every input is submitted again)",
    )
    batch.add_argument(
        "--max-failure-ratio",
        type=_ratio,
        metavar="R",
        help="stop submitting once more than this share (0-1) of this run's outcomes failed, "
        f"checked from its {MIN_OUTCOMES_FOR_RATIO}th outcome on; what was submitted is "
        "finished, the exit code is 1 and the same command resumes (default: no limit)",
    )
    batch.add_argument(
        "--retry",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="submit an input again, up to N times, when its inference fails with a model "
        "error (any, or one matching --retry-on), after 1 s, 2 s, 4 s... (30 s at most, "
        "jittered); each retry is a new inference whose id the state file's attempts table "
        "keeps (default: %(default)s)",
    )
    batch.add_argument(
        "--retry-on",
        action="append",
        type=_pattern,
        metavar="PATTERN",
        help="with --retry: only retry model errors whose failure text matches this regular "
        "expression (repeatable: any of them; default: every model error)",
    )
    batch.add_argument(
        "--cleanup",
        choices=("inputs", "all"),
        help="delete from S3 each input the batch uploaded once its outcome is recorded; "
        "'all': also the result or failure object, once its content is in --output (needs "
        "s3:DeleteObject; default: keep everything)",
    )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")

    invoke = commands.add_parser(
        "invoke", help="submit one inference", epilog=EXIT_CODES, formatter_class=raw
    )
    invoke.add_argument("endpoint", help="the async endpoint's name")
    payload = invoke.add_mutually_exclusive_group(required=True)
    payload.add_argument("--data", help="the payload, as JSON text")
    payload.add_argument("--file", type=Path, help="a file holding the payload (any bytes)")
    invoke.add_argument("--wait", action="store_true", help="wait for the result and print it")
    _request_options(invoke)
    invoke.add_argument(
        "--timeout",
        type=_seconds,
        default=900,
        help="with --wait: seconds to wait for the result (default: %(default)s)",
    )

    result = commands.add_parser(
        "result",
        help="wait for the result of a token and print it",
        epilog=EXIT_CODES,
        formatter_class=raw,
    )
    result.add_argument("token", help="the token printed by 'aiosagemaker invoke'")
    result.add_argument("--endpoint", help="the endpoint (default: the one in the token)")
    result.add_argument(
        "--timeout", type=_seconds, default=900,
        help="seconds to wait for the result (default: %(default)s)",
    )  # fmt: skip
    _region_option(result)
    return parser


def _request_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--content-type",
        default="application/json",
        help="ContentType of the payloads (default: %(default)s)",
    )
    parser.add_argument(
        "--accept",
        default="application/json",
        help="Accept: the result's content type asked for (default: %(default)s)",
    )
    parser.add_argument(
        "--bucket",
        help="S3 bucket for the payloads that are uploaded (default: the SDK's, "
        "sagemaker-REGION-ACCOUNT). Payloads of at most 128,000 bytes travel inline in the "
        "request where botocore supports it and use no bucket, unless --no-inline",
    )
    parser.add_argument(
        "--no-inline",
        action="store_true",
        help="upload every payload to S3 (--bucket), however small",
    )
    _region_option(parser)


def _region_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--region",
        help="AWS region (default: AWS_DEFAULT_REGION / AWS_REGION or the AWS config file)",
    )


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
