"""`LocalEndpoint`: the emulator's lifecycle, on its own event loop in a background thread.

moto (S3, SNS, SQS, STS) runs in its ThreadedMotoServer thread; the InvokeEndpointAsync server,
the queues and the S3/SNS clients run on a private event loop in another thread, so the emulator
keeps working while the caller's loop is busy or the caller is synchronous.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio.to_thread

from ._aws import AwsClients
from ._backends import MotoBackend
from ._control import ControlPlane
from ._delivery import DirectDelivery
from ._faults import FaultConfig, FaultState
from ._models import ContainerModel, build_model, check_model
from ._queue import EndpointQueue, EndpointStats, Invocation, Tracker
from ._server import RuntimeServer
from ._spec import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    ConfigError,
    EndpointSpec,
    ResolvedEndpoint,
    check_endpoint_url,
    resolve_endpoint,
    split_s3_uri,
)
from ._state import load_moto, load_pending, save_moto, save_pending
from ._trust import ModelPolicy, check_host, non_loopback_warning

logger = logging.getLogger("aiosagemaker.local")

START_TIMEOUT_SECONDS = 60.0
DUMMY_CREDENTIALS = ("testing", "testing")
NOTIFICATION_DELIVERIES = ("emulator", "sns")


class LocalEndpoint:
    """A local SageMaker async endpoint (plus moto's S3/SNS/SQS/STS) for clients and tests.

    Use ``with LocalEndpoint(...) as local:`` or ``async with LocalEndpoint(...) as local:``;
    clients reach it through :attr:`env` (``AWS_ENDPOINT_URL_*`` and dummy credentials).

    Args:
        endpoints: The endpoints to serve.
        host: Interface for the InvokeEndpointAsync server (and moto).
        port: Port of the InvokeEndpointAsync server; 0 picks a free one.
        aws_port: Port of moto's S3/SNS/SQS/STS server; 0 picks a free one.
        s3_endpoint_url: Use this S3-compatible endpoint instead of moto's S3.
        sns_endpoint_url: Use this SNS endpoint instead of moto's SNS.
        credentials: ``(access_key_id, secret_access_key)`` for the emulator's own S3/SNS
            clients and :attr:`env`; default dummy ``testing``/``testing``.
        region: AWS region reported everywhere.
        account_id: Account in topic ARNs and error messages (moto's default account).
        time_scale: Factor applied to RequestTTLSeconds and InvocationTimeoutSeconds
            (``0.001`` turns the 60 s minimum TTL into 60 ms).
        faults: Initial fault injection; see :meth:`set_faults`.
        state_dir: Keep moto's S3/SNS/SQS state and the pending invocations in this directory:
            written on stop, read back on start (see ``docs/emulator.md``).
        notification_delivery: ``"emulator"`` (default): when moto serves SNS, the emulator
            delivers notifications for topics with only SQS subscribers into moto's queues
            itself, in SNS's raw or enveloped form; ``"sns"``: always publish through SNS.
        allow_remote_models: Let ``CreateModel`` name any ``module:function`` or container
            URL. By default only the models of ``endpoints`` and the built-ins may be named:
            a model reference is code the emulator runs, for anyone who can reach it.
        allow_non_loopback: Allow a ``host`` that is not loopback (a warning is logged).
            Request signatures are not checked, so anyone who can reach the ports can use them.
    """

    def __init__(
        self,
        endpoints: Sequence[EndpointSpec] | EndpointSpec,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        aws_port: int = 0,
        s3_endpoint_url: str | None = None,
        sns_endpoint_url: str | None = None,
        credentials: tuple[str, str] | None = None,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        time_scale: float = 1.0,
        faults: FaultConfig | None = None,
        notification_delivery: str = "emulator",
        state_dir: str | os.PathLike[str] | None = None,
        allow_remote_models: bool = False,
        allow_non_loopback: bool = False,
    ) -> None:
        specs = [endpoints] if isinstance(endpoints, EndpointSpec) else list(endpoints)
        if not specs:
            raise ConfigError("at least one endpoint is needed")
        if not (
            isinstance(time_scale, int | float) and math.isfinite(time_scale) and time_scale > 0
        ):
            raise ConfigError(f"time_scale must be a positive number, got {time_scale!r}")
        for what, value in (("port", port), ("aws_port", aws_port)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
                raise ConfigError(f"{what} must be between 0 and 65535, got {value!r}")
        if s3_endpoint_url is not None:
            s3_endpoint_url = check_endpoint_url(s3_endpoint_url, "s3_endpoint_url")
        if sns_endpoint_url is not None:
            sns_endpoint_url = check_endpoint_url(sns_endpoint_url, "sns_endpoint_url")
        if notification_delivery not in NOTIFICATION_DELIVERIES:
            raise ConfigError(
                f"notification_delivery must be one of {', '.join(NOTIFICATION_DELIVERIES)}, "
                f"got {notification_delivery!r}"
            )
        self.notification_delivery = notification_delivery
        self.non_loopback = check_host(host, allow_non_loopback)
        self.state_dir = Path(state_dir) if state_dir is not None else None
        if self.state_dir is not None and self.state_dir.exists() and not self.state_dir.is_dir():
            raise ConfigError(f"state_dir is not a directory: {str(self.state_dir)!r}")
        self._serving = False
        self._unfinished: list[tuple[str, Invocation]] = []
        self.region = region
        self.account_id = account_id
        self.host = host
        self._port = port
        self._aws_port = aws_port
        self.time_scale = float(time_scale)
        self._endpoints: dict[str, ResolvedEndpoint] = {}
        self._tracker = Tracker()
        for spec in specs:
            resolved = resolve_endpoint(spec, region=region, account_id=account_id)
            if resolved.name in self._endpoints:
                raise ConfigError(f"endpoint {resolved.name!r} is configured twice")
            check_model(resolved.model)
            self._endpoints[resolved.name] = resolved
            self._tracker.add_endpoint(resolved.name)
        self._models = ModelPolicy((e.model for e in self._endpoints.values()), allow_remote_models)
        self._external_s3 = s3_endpoint_url
        self._external_sns = sns_endpoint_url
        self._credentials = credentials
        self._faults = FaultState(faults or FaultConfig())
        self._moto: MotoBackend | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._aws: AwsClients | None = None
        self._queues: dict[str, EndpointQueue] = {}
        self._server: RuntimeServer | None = None
        self._control: ControlPlane | None = None
        self.runtime_url = ""
        self.s3_url = ""
        self.sns_url: str | None = None
        self.moto_url: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start moto (if used) and the emulator; blocks until it accepts invocations."""
        if self._thread is not None:
            raise RuntimeError("LocalEndpoint is already started")
        if self.non_loopback:
            logger.warning(non_loopback_warning(self.host))
        has_topics = any(e.success_topic_arn or e.error_topic_arn for e in self._endpoints.values())
        try:
            if self._external_s3 is None or (has_topics and self._external_sns is None):
                if self.state_dir is not None and load_moto(self.state_dir):
                    logger.info("restored S3/SNS/SQS state from %s", self.state_dir)
                self._moto = MotoBackend(self.host, self._aws_port)
                self._moto.start()
                self.moto_url = self._moto.url
            self.s3_url = self._external_s3 or self.moto_url or ""
            self.sns_url = self._external_sns or self.moto_url
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._thread = threading.Thread(
                target=self._run_loop, args=(loop,), name="aiosagemaker-local", daemon=True
            )
            self._thread.start()
            asyncio.run_coroutine_threadsafe(self._astart(), loop).result(START_TIMEOUT_SECONDS)
        except BaseException:
            self.stop()
            raise
        self._serving = True
        logger.info("emulator ready: runtime %s, s3 %s", self.runtime_url, self.s3_url)

    def stop(self) -> None:
        """Stop the emulator and moto; queued and running invocations are abandoned."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            if threading.current_thread() is thread:
                raise RuntimeError("LocalEndpoint.stop() cannot be called from the emulator loop")
            if thread.is_alive():
                future = asyncio.run_coroutine_threadsafe(self._astop(), loop)
                try:
                    future.result(START_TIMEOUT_SECONDS)
                finally:
                    loop.call_soon_threadsafe(loop.stop)
                    thread.join(START_TIMEOUT_SECONDS)
        self._loop = self._thread = None
        if self._moto is not None:
            self._moto.stop()
        serving, self._serving = self._serving, False
        if serving and self.state_dir is not None:
            save_pending(self.state_dir, self._unfinished)
            if self._moto is not None:
                save_moto(self.state_dir)
            logger.info(
                "saved state (%d pending invocations) to %s", len(self._unfinished), self.state_dir
            )
        self._moto = None

    def __enter__(self) -> LocalEndpoint:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LocalEndpoint:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    async def _astart(self) -> None:
        credentials = self._credentials
        if credentials is None and self._external_s3 is None:
            credentials = DUMMY_CREDENTIALS
        total = sum(e.max_concurrency for e in self._endpoints.values())
        aws = AwsClients(
            region=self.region,
            s3_url=self.s3_url,
            sns_url=self.sns_url,
            credentials=credentials,
            max_connections=max(10, min(total, 100)),
            direct=self._direct_delivery(),
        )
        self._aws = aws
        await aws.open()
        buckets: list[str] = []
        if self._external_s3 is None:
            buckets += [DEFAULT_BUCKET, f"sagemaker-{self.region}-{self.account_id}"]
        for endpoint in self._endpoints.values():
            for path in (endpoint.output_path, endpoint.failure_path):
                if path is not None:
                    buckets.append(split_s3_uri(path)[0])
            for arn in (endpoint.success_topic_arn, endpoint.error_topic_arn):
                if arn:
                    await aws.ensure_topic(arn)
        for bucket in dict.fromkeys(buckets):
            await aws.ensure_bucket(bucket)
        for endpoint in self._endpoints.values():
            await self._start_queue(endpoint)
        control = ControlPlane(
            self._queues,
            region=self.region,
            account_id=self.account_id,
            ensure_resources=self._ensure_resources,
            create_endpoint=self._create_endpoint,
            check_model=self._models.check,
        )
        for endpoint in self._endpoints.values():
            model_ref = endpoint.model
            image = model_ref if isinstance(model_ref, str) else "aiosagemaker-local/python-model"
            control.register(endpoint, image)
        self._control = control
        if self.state_dir is not None:
            self._restore_pending(self.state_dir)
        server = RuntimeServer(
            self._queues, self._faults, self._tracker, self.account_id, control.handle
        )
        self._server = server
        await server.start(self.host, self._port)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.runtime_url = f"http://{host}:{server.port}"

    async def _astop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        self._unfinished = [
            (name, item) for name, queue in self._queues.items() for item in queue.pending()
        ]
        if self._control is not None:
            await self._control.stop()
        for queue in self._queues.values():
            await queue.stop()
        if self._aws is not None:
            await self._aws.close()
        self._tracker.abandon()

    def _restore_pending(self, state_dir: Path) -> None:
        restored = 0
        for name, item in load_pending(state_dir):
            queue = self._queues.get(name)
            if queue is None:
                logger.warning(
                    "dropping pending inference %s: no endpoint %r", item.inference_id, name
                )
                continue
            queue.submit(item, restored=True)
            restored += 1
        if restored:
            logger.info("resumed %d pending invocations from %s", restored, state_dir)

    def _direct_delivery(self) -> DirectDelivery | None:
        if self.notification_delivery != "emulator" or self._external_sns is not None:
            return None
        if self.sns_url is None:
            return None
        return DirectDelivery(self.sns_url)

    async def _start_queue(self, endpoint: ResolvedEndpoint) -> None:
        assert self._aws is not None
        model = build_model(endpoint.model, endpoint.max_concurrency)
        if isinstance(model, ContainerModel) and not await model.ping():
            logger.warning("model container %s does not answer GET /ping", model.url)
        queue = EndpointQueue(
            endpoint, model, self._aws, self._faults, self._tracker, self.time_scale
        )
        self._queues[endpoint.name] = queue
        queue.start()

    async def _create_endpoint(self, endpoint: ResolvedEndpoint) -> None:
        """Start serving an endpoint made by CreateEndpoint (its buckets and topics first)."""
        if isinstance(endpoint.model, str):
            self._models.check(endpoint.model)
        check_model(endpoint.model)
        await self._ensure_resources(endpoint.async_inference_config())
        self._tracker.add_endpoint(endpoint.name)
        self._endpoints[endpoint.name] = endpoint
        await self._start_queue(endpoint)

    async def _ensure_resources(self, async_config: dict[str, Any]) -> None:
        """Create the buckets and topics an UpdateEndpoint's AsyncInferenceConfig names."""
        assert self._aws is not None
        output = async_config.get("OutputConfig") or {}
        for key in ("S3OutputPath", "S3FailurePath"):
            if output.get(key):
                await self._aws.ensure_bucket(split_s3_uri(output[key])[0])
        notification = output.get("NotificationConfig") or {}
        for key in ("SuccessTopic", "ErrorTopic"):
            if notification.get(key):
                await self._aws.ensure_topic(notification[key])

    # -- introspection and control ---------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point AWS SDKs and the AWS CLI at the emulator."""
        access_key, secret_key = self._credentials or DUMMY_CREDENTIALS
        env = {
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.runtime_url,
            "AWS_ENDPOINT_URL_SAGEMAKER": self.runtime_url,
            "AWS_ENDPOINT_URL_S3": self.s3_url,
        }
        if self.sns_url:
            env["AWS_ENDPOINT_URL_SNS"] = self.sns_url
        if self.moto_url:
            env["AWS_ENDPOINT_URL_SQS"] = self.moto_url
            env["AWS_ENDPOINT_URL_STS"] = self.moto_url
        env.update(
            {
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_ACCESS_KEY_ID": access_key,
                "AWS_SECRET_ACCESS_KEY": secret_key,
            }
        )
        return env

    @property
    def endpoints(self) -> list[ResolvedEndpoint]:
        """All resolved endpoints."""
        return list(self._endpoints.values())

    def endpoint(self, name: str) -> ResolvedEndpoint:
        """The resolved spec of ``name`` (paths and topic ARNs filled in)."""
        try:
            return self._endpoints[name]
        except KeyError:
            raise KeyError(f"no endpoint named {name!r}") from None

    def stats(self, name: str) -> EndpointStats:
        """A snapshot of the counters of endpoint ``name``."""
        self.endpoint(name)
        return self._tracker.stats(name)

    @property
    def faults(self) -> FaultConfig:
        """The fault injection in effect; assign to change it (same as :meth:`set_faults`)."""
        return self._faults.config

    @faults.setter
    def faults(self, config: FaultConfig) -> None:
        self.set_faults(config)

    def set_instance_count(self, name: str, count: int) -> None:
        """Scale endpoint ``name`` to ``count`` instances (0: scaled to zero); thread-safe.

        As an auto-scaling policy would: with 0, invocations are accepted and wait in the
        queue (their TTL still counts) and DescribeEndpoint reports ``CurrentInstanceCount``
        0; adding instances starts their workers at once. Invocations already running finish.

        Raises:
            KeyError: No endpoint ``name`` is being served.
            ConfigError: ``count`` is not an integer >= 0.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(f"instance count must be an integer >= 0, got {count!r}")
        self.endpoint(name)
        loop = self._loop
        if loop is None:
            raise RuntimeError("the emulator is not running")

        async def scale() -> None:
            queue = self._queues.get(name)
            if queue is None:
                raise KeyError(f"no endpoint named {name!r}")
            queue.scale(count)
            self._endpoints[name] = queue.endpoint

        asyncio.run_coroutine_threadsafe(scale(), loop).result(START_TIMEOUT_SECONDS)

    def set_faults(self, config: FaultConfig) -> None:
        """Replace the fault injection (and reseed its random generator); thread-safe."""
        self._faults.replace(config)

    def wait_for_stats_sync(
        self, name: str, predicate: Callable[[EndpointStats], bool], timeout: float = 30.0
    ) -> EndpointStats:
        """Block until ``predicate(stats(name))`` is true; return those stats.

        Raises:
            TimeoutError: The condition did not hold within ``timeout`` seconds.
        """
        self.endpoint(name)
        if not self._tracker.wait_for(name, predicate, timeout):
            raise TimeoutError(f"condition on {name!r} not met in {timeout} s: {self.stats(name)}")
        return self.stats(name)

    async def wait_for_stats(
        self,
        name: str,
        predicate: Callable[[EndpointStats], bool],
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> EndpointStats:
        """Async :meth:`wait_for_stats_sync` (does not block the caller's event loop)."""
        return await anyio.to_thread.run_sync(
            self.wait_for_stats_sync, name, predicate, timeout, abandon_on_cancel=True
        )

    def wait_idle_sync(self, timeout: float = 30.0) -> None:
        """Block until every accepted invocation has finished (objects written, notified).

        Raises:
            TimeoutError: Still busy after ``timeout`` seconds.
        """
        if not self._tracker.wait_idle(timeout):
            raise TimeoutError(f"the emulator was still busy after {timeout} s")

    async def wait_idle(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Async :meth:`wait_idle_sync` (does not block the caller's event loop)."""
        await anyio.to_thread.run_sync(self.wait_idle_sync, timeout, abandon_on_cancel=True)

    def __repr__(self) -> str:
        names = ", ".join(self._endpoints)
        return (
            f"<LocalEndpoint [{names}] runtime={self.runtime_url or '-'} s3={self.s3_url or '-'}>"
        )
