"""Command line: ``aiosagemaker local serve ...`` (also ``python -m aiosagemaker.local serve``).

Prints ``export AWS_ENDPOINT_URL_...=...`` lines on stdout, logs invocations on stderr and runs
until Ctrl-C or SIGTERM (exit 0). Bad input gives one ``aiosagemaker: error: ...`` line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .._cli_args import OneLineParser, fail, non_negative_int, positive_int
from ._models import cwd_importable
from ._spec import ConfigError

DEFAULT_MODEL = "aiosagemaker.local.models:demo"


class _Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while the emulator was starting."""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``aiosagemaker`` argument parser."""
    parser = OneLineParser(prog="aiosagemaker", description="aiosagemaker tools")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    local = commands.add_parser("local", help="the local async-endpoint emulator")
    local_commands = local.add_subparsers(
        dest="local_command", required=True, parser_class=OneLineParser
    )
    serve = local_commands.add_parser(
        "serve",
        help="serve InvokeEndpointAsync (plus moto S3/SNS/SQS/STS) on loopback",
        description="Run a local SageMaker async endpoint. Multiple endpoints: --config FILE.",
    )
    serve.add_argument("--config", help="TOML or JSON config file (endpoints, faults, ...)")
    serve.add_argument("--endpoint", help="endpoint name (default: demo, if no config file)")
    model = serve.add_mutually_exclusive_group()
    model.add_argument("--model", help=f"package.module:function (default {DEFAULT_MODEL})")
    model.add_argument("--container-url", help="model container URL (GET /ping, POST /invocations)")
    serve.add_argument(
        "--max-concurrency",
        type=positive_int,
        metavar="N",
        help="MaxConcurrentInvocationsPerInstance (default 4)",
    )
    serve.add_argument(
        "--instances",
        type=non_negative_int,
        metavar="N",
        help="instance count (default 1; 0: scaled to zero, invocations queue and nothing runs)",
    )
    serve.add_argument("--output-path", help="S3OutputPath (s3://bucket/prefix)")
    failure = serve.add_mutually_exclusive_group()
    failure.add_argument("--failure-path", help="S3FailurePath (s3://bucket/prefix)")
    failure.add_argument(
        "--no-failure-path",
        action="store_true",
        help="configure the endpoint without S3FailurePath",
    )
    serve.add_argument("--success-topic", help="SNS SuccessTopic (name or ARN)")
    serve.add_argument("--error-topic", help="SNS ErrorTopic (name or ARN)")
    serve.add_argument(
        "--include-response-in",
        metavar="LIST",
        help="IncludeInferenceResponseIn: comma-separated success,error",
    )
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow a --host that is not loopback (no request is authenticated: anyone who "
        "can reach the ports can use them)",
    )
    serve.add_argument(
        "--allow-remote-models",
        action="store_true",
        help="let CreateModel name any module:function or container URL (runs arbitrary "
        "code for anyone who can reach the emulator)",
    )
    serve.add_argument(
        "--port", type=_port, help="InvokeEndpointAsync and control-plane port (default: free)"
    )
    serve.add_argument(
        "--aws-port", type=_port, help="port of moto's S3/SNS/SQS/STS (default: free port)"
    )
    serve.add_argument("--s3-endpoint-url", help="use this S3-compatible endpoint, not moto")
    serve.add_argument("--sns-endpoint-url", help="use this SNS endpoint, not moto")
    serve.add_argument(
        "--notification-delivery",
        choices=["emulator", "sns"],
        help="emulator (default): deliver to SQS subscribers directly; sns: publish via SNS",
    )
    serve.add_argument(
        "--state-dir",
        metavar="DIR",
        help="keep S3/SNS/SQS state and pending invocations here across restarts",
    )
    serve.add_argument("--time-scale", type=float, help="factor on TTL and invocation timeout")
    serve.add_argument("--latency", help="model latency: 0.2 | uniform:0.1,0.3 | lognormal:0.2,0.5")
    serve.add_argument(
        "--unavailable-rate",
        type=float,
        metavar="R",
        help="fraction (0..1) of invocations answered 503 ServiceUnavailable",
    )
    serve.add_argument(
        "--internal-failure-rate",
        type=float,
        metavar="R",
        help="fraction (0..1) of invocations answered 500 InternalFailure",
    )
    serve.add_argument(
        "--accept-delay",
        type=_non_negative_float,
        metavar="S",
        help="seconds before answering the 202",
    )
    serve.add_argument("--seed", type=int, help="seed for latency and unavailable-rate faults")
    serve.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="emulator log level",
    )
    return parser


def _build(args: argparse.Namespace) -> object:
    """Build the (unstarted) LocalEndpoint from parsed arguments."""
    from ._configfile import EmulatorConfig, load_config
    from ._emulator import LocalEndpoint
    from ._faults import FaultConfig, Latency
    from ._spec import EndpointSpec

    config = load_config(args.config) if args.config else EmulatorConfig()
    endpoints = list(config.endpoints)
    if args.endpoint or not endpoints:
        include = [p for p in (args.include_response_in or "").split(",") if p.strip()]
        endpoints.append(
            EndpointSpec(
                name=args.endpoint or "demo",
                model=args.container_url or args.model or DEFAULT_MODEL,
                output_path=args.output_path,
                failure_path=False if args.no_failure_path else args.failure_path,
                success_topic=args.success_topic,
                error_topic=args.error_topic,
                include_inference_response_in=tuple(include),
                max_concurrent_invocations_per_instance=args.max_concurrency or 4,
                instance_count=1 if args.instances is None else args.instances,
            )
        )
    elif any(
        value is not None
        for value in (args.model, args.container_url, args.max_concurrency, args.success_topic)
    ):
        raise ConfigError("endpoint flags (--model, ...) need --endpoint when --config is used")
    faults = config.faults or FaultConfig()
    overrides = {
        "model_latency": Latency.parse(args.latency) if args.latency else None,
        "unavailable_rate": args.unavailable_rate,
        "internal_failure_rate": args.internal_failure_rate,
        "accept_delay": args.accept_delay,
        "seed": args.seed,
    }
    changes = {key: value for key, value in overrides.items() if value is not None}
    if changes:
        faults = dataclasses.replace(faults, **changes)
    time_scale = args.time_scale if args.time_scale is not None else config.time_scale
    return LocalEndpoint(
        endpoints,
        host=args.host or config.host or "127.0.0.1",
        port=args.port if args.port is not None else (config.port or 0),
        aws_port=args.aws_port if args.aws_port is not None else (config.aws_port or 0),
        s3_endpoint_url=args.s3_endpoint_url or config.s3_endpoint_url,
        sns_endpoint_url=args.sns_endpoint_url or config.sns_endpoint_url,
        time_scale=1.0 if time_scale is None else time_scale,
        faults=faults,
        notification_delivery=args.notification_delivery
        or config.notification_delivery
        or "emulator",
        state_dir=args.state_dir or config.state_dir,
        allow_remote_models=args.allow_remote_models or bool(config.allow_remote_models),
        allow_non_loopback=args.allow_non_loopback or bool(config.allow_non_loopback),
    )


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiosagemaker.local").setLevel(args.log_level)
    stop = threading.Event()
    serving = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        if not serving.is_set():  # interrupt a build or start that is still under way
            raise _Interrupted

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            _run(args, stop, serving)
        except _Interrupted:
            sys.stderr.write("aiosagemaker local: stopped during start-up\n")
            return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.stderr.write("aiosagemaker local: stopped\n")
    _exit_if_models_linger()
    return 0


def _exit_if_models_linger() -> None:
    """Exit now if a sync model call still runs in a thread (it would block interpreter exit)."""
    lingering = [t for t in threading.enumerate() if t.name.startswith("aiosagemaker-local-model")]
    if any(t.is_alive() for t in lingering):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _run(args: argparse.Namespace, stop: threading.Event, serving: threading.Event) -> None:
    """Build and start the emulator, set ``serving``, print the exports, wait for ``stop``."""
    from ._emulator import LocalEndpoint

    try:
        local = _build(args)
    except ConfigError as exc:
        fail(str(exc))
    assert isinstance(local, LocalEndpoint)
    try:
        local.start()
    except (_Interrupted, SystemExit):
        raise
    except Exception as exc:  # bind errors, unreachable endpoints, ...: one line, exit 2
        fail(f"cannot start the emulator: {exc}")
    serving.set()
    try:
        for key, value in local.env.items():
            sys.stdout.write(f"export {key}={shlex.quote(value)}\n")
        sys.stdout.flush()
        names = ", ".join(e.name for e in local.endpoints)
        sys.stderr.write(
            f"aiosagemaker local: serving {names} on {local.runtime_url}; Ctrl-C to stop\n"
        )
        sys.stderr.flush()
        while not stop.wait(1.0):
            pass
    finally:
        local.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aiosagemaker`` console script (and of ``python -m``)."""
    cwd_importable()
    args = build_parser().parse_args(argv)
    if args.command == "local" and args.local_command == "serve":
        return _serve(args)
    fail("unknown command")  # pragma: no cover - argparse enforces the choices
