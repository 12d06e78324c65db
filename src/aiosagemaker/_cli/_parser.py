"""The ``aiosagemaker`` command's parser: ``batch``, ``invoke`` and ``result``, their help text
(every default shown) and argument types that refuse bad values with one line."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .._cli_args import OneLineParser, non_negative_int, positive_int
from ._batch_job import MIN_OUTCOMES_FOR_RATIO

__all__ = ["build_parser"]


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
