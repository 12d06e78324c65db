"""The ``aiosagemaker`` command: ``batch``, ``invoke``, ``result`` (and ``local``, the emulator).

Bad input gives one ``aiosagemaker: error: ...`` line on stderr and exit code 2; Ctrl-C stops
a batch cleanly (exit 130) and the same command resumes it. Endpoints, region and credentials
come from the standard AWS variables (``AWS_ENDPOINT_URL_*`` included).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from .._cli_args import EXIT_USAGE, OneLineParser, fail, positive_int
from .._exceptions import AsyncInferenceError
from ._batch_job import BatchJob, encode_result

__all__ = ["main"]

EXIT_INTERRUPTED = 130


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The client commands' parser (``local`` is handed to the emulator's)."""
    parser = OneLineParser(prog="aiosagemaker", description="aiosagemaker tools")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    commands.add_parser("local", help="the local async-endpoint emulator (aiosagemaker[local])")

    batch = commands.add_parser("batch", help="a durable, resumable batch over a JSONL file")
    batch.add_argument("endpoint", help="the async endpoint's name")
    batch.add_argument("input", type=Path, help="JSONL file: one JSON payload per line")
    batch.add_argument("--output", type=Path, required=True, help="JSONL file of outcomes")
    batch.add_argument("--state", type=Path, help="state file (default: OUTPUT.state.db)")
    batch.add_argument("--concurrency", type=positive_int, default=64)
    batch.add_argument("--content-type", default="application/json")
    batch.add_argument("--accept", default="application/json")
    batch.add_argument("--bucket", help="bucket for uploaded inputs (default: the SDK's)")
    batch.add_argument(
        "--timeout", type=_seconds, default=900, help="seconds each inference may take"
    )
    batch.add_argument(
        "--uncertain-wait",
        type=_seconds,
        default=300,
        help="seconds to wait for the result of a submission whose response was lost",
    )
    batch.add_argument(
        "--resubmit-uncertain",
        action="store_true",
        help="submit again the inputs whose submission's outcome is unknown (may duplicate)",
    )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")

    invoke = commands.add_parser("invoke", help="submit one inference")
    invoke.add_argument("endpoint")
    payload = invoke.add_mutually_exclusive_group(required=True)
    payload.add_argument("--data", help="the payload, as JSON text")
    payload.add_argument("--file", type=Path, help="a file holding the payload")
    invoke.add_argument("--wait", action="store_true", help="wait for the result and print it")
    invoke.add_argument("--content-type", default="application/json")
    invoke.add_argument("--accept", default="application/json")
    invoke.add_argument("--bucket", help="bucket for the uploaded input (default: the SDK's)")
    invoke.add_argument("--timeout", type=_seconds, default=900)

    result = commands.add_parser("result", help="wait for the result of a token and print it")
    result.add_argument("token", help="the token printed by 'aiosagemaker invoke'")
    result.add_argument("--endpoint", help="the endpoint (default: the one in the token)")
    result.add_argument("--timeout", type=_seconds, default=900)
    return parser


def _waiter(timeout: float) -> Any:
    from .._config import WaiterConfig

    return WaiterConfig(max_attempts=None, delay=0.5, backoff=1.5, max_delay=15, timeout=timeout)


async def _batch(args: argparse.Namespace) -> int:
    if not args.input.is_file():
        fail(f"no such input file: {args.input}")
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
        progress=not args.no_progress,
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

    async with AsyncPredictor(
        args.endpoint,
        serializer=IdentitySerializer(args.content_type),
        deserializer=BytesDeserializer(accept=args.accept),
        default_bucket=args.bucket,
        inline="auto",
    ) as predictor:
        response = await predictor.predict_async(data)
        printed: dict[str, Any] = {
            "inference_id": response.inference_id,
            "output_location": response.output_path,
            "failure_location": response.failure_path,
            "token": response.continuation_token(),
        }
        if args.wait:
            printed["result"] = encode_result(await response.get_result(_waiter(args.timeout)))
    print(json.dumps(printed, ensure_ascii=False))
    return 0


async def _result(args: argparse.Namespace) -> int:
    from .._predictor import AsyncPredictor
    from .._tokens import decode_token, token_key
    from ..deserializers import BytesDeserializer

    state, _ = decode_token(args.token, token_key(None))
    async with AsyncPredictor(
        args.endpoint or state["endpoint_name"], deserializer=BytesDeserializer()
    ) as predictor:
        response = predictor.response_from_token(args.token)
        result = await response.get_result(_waiter(args.timeout))
    print(json.dumps(encode_result(result), ensure_ascii=False))
    return 0


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
        if args.command == "batch":
            return anyio.run(_batch, args)
        if args.command == "invoke":
            return anyio.run(_invoke, args, _payload(args))
        return anyio.run(_result, args)
    except (AsyncInferenceError, ValueError, TypeError) as error:
        code = EXIT_USAGE if isinstance(error, (ValueError, TypeError)) else 1
        fail(f"{type(error).__name__}: {error}", code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
