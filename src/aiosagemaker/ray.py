"""Ray Data integration: run a dataset column through an async endpoint from a pool of actors.

``pip install 'aiosagemaker[ray]'``, then::

    ds.map_batches(
        AsyncInferenceMapper,
        fn_constructor_kwargs={"endpoint_name": "my-endpoint", "num_actors": 4, ...},
        compute=ray.data.ActorPoolStrategy(size=4),
        batch_size=1000,
    )

Each actor holds one :class:`~aiosagemaker.AsyncPredictor` for its whole life (opened on the
first batch, on the event loop Ray Data runs async UDFs on; closed when the actor ends) and runs
every batch through :meth:`~aiosagemaker.AsyncPredictor.map`. Every row comes back with the
outcome columns :data:`OUTCOME_COLUMNS`: a failed inference is a row with ``error_type`` set,
never a failed job. This module does not import Ray (nor numpy, pandas or pyarrow until a batch
of that kind arrives): the class is a plain callable that Ray instantiates in its actors.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio

from ._config import WaiterConfig, check_positive, check_waiter_config
from ._policies import RetryPolicy
from ._predictor import AsyncPredictor
from ._ray_batch import RayBatch
from ._types import Deserializer, Serializer
from ._waiting import DEFAULT_S3_REQUESTS_PER_SECOND
from .deserializers import BytesDeserializer
from .serializers import IdentitySerializer

__all__ = ["OUTCOME_COLUMNS", "ActorSummary", "AsyncInferenceMapper"]

logger = logging.getLogger("aiosagemaker")

OUTCOME_COLUMNS = ("result", "error_type", "error_message", "inference_id", "output_location")
"""The columns every row gains (they replace input columns of the same name)."""

ResultFormat = Literal["json", "raw"]
# Set per actor from num_actors, or refused: a session object cannot be shipped to actors.
_RESERVED = {
    "s3_requests_per_second": "cluster_s3_requests_per_second (divided among num_actors)",
    "max_concurrency": "cluster_max_concurrency (divided among num_actors)",
    "session": "region_name= and endpoint_urls=, or AWS_* variables in the runtime_env",
}
_PREDICTOR_KWARGS = frozenset(inspect.signature(AsyncPredictor).parameters) - {"endpoint_name"}
_CLOSE_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class ActorSummary:
    """What one actor's mapper did, handed to ``on_close`` once its predictor is closed."""

    endpoint_name: str
    batches: int
    rows: int
    failed: int


class _EndpointSession:
    """An aiobotocore session giving each client a fixed region and per-service endpoint URL."""

    def __init__(self, region_name: str | None, endpoint_urls: Mapping[str, str]) -> None:
        from aiobotocore.session import get_session

        self._session = get_session()
        self._region_name = region_name
        self._endpoint_urls = dict(endpoint_urls)

    def create_client(self, service: str, **kwargs: Any) -> Any:
        if self._region_name is not None:
            kwargs.setdefault("region_name", self._region_name)
        if service in self._endpoint_urls:
            kwargs.setdefault("endpoint_url", self._endpoint_urls[service])
        return self._session.create_client(service, **kwargs)


def _check_urls(endpoint_urls: object) -> dict[str, str]:
    if endpoint_urls is None:
        return {}
    if not isinstance(endpoint_urls, Mapping):
        raise TypeError(
            "endpoint_urls must be a dict of service name to URL, e.g. "
            f"{{'s3': 'http://...', 'sagemaker-runtime': 'http://...'}}, got "
            f"{type(endpoint_urls).__name__}"
        )
    for service, url in endpoint_urls.items():
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(
                f"endpoint_urls[{service!r}] must be an http:// or https:// URL, got {url!r}"
            )
    return {str(service): url for service, url in endpoint_urls.items()}


def _share(name: str, total: float, actors: int) -> float:
    """This actor's share of a cluster-wide figure."""
    check_positive(name, total)
    return total / actors


def _json_default(value: Any) -> Any:
    """NumPy arrays and scalars, pandas objects: as plain lists, numbers and dicts."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a pandas DataFrame
        return value.to_dict(orient="records")
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class AsyncInferenceMapper:
    """A Ray Data ``map_batches`` class: sends one column through an async endpoint.

    Ray builds one per actor from ``fn_constructor_kwargs``; the arguments must therefore be
    picklable (serializers, deserializers and ``WaiterConfig`` are). Requests in a Ray job
    reach AWS through the standard chain in each actor (instance role, ``AWS_*`` variables in
    the ``runtime_env``) unless ``region_name`` / ``endpoint_urls`` say otherwise.

    Args:
        endpoint_name: The endpoint to invoke.
        serializer: Turns each value of ``column`` into the payload.
        deserializer: Decodes each result.
        column: The input column; each of its values is one inference's ``data``, as Ray
            hands it over (in the default numpy batch format lists arrive as NumPy arrays,
            which ``JSONSerializer`` sends as JSON lists).
        concurrency: Most inferences in flight per actor, over all the batches Ray runs on
            it at once (submitted, outcome not yet collected).
        waiter_config: How long each inference may take (default: the predictor's).
        result_format: How ``result`` is stored. ``"json"`` (default): the decoded result's
            JSON text (a string column; NumPy values become lists and numbers, a DataFrame a
            list of records); ``json.loads`` gives it back. A result that has no JSON form
            (bytes) makes that row an error that names its S3 location. ``"raw"``: the
            decoded object as it is (use it for bytes or str results).
        initial_args: InvokeEndpointAsync arguments for every request.
        retry: Resubmit failed inferences as :meth:`AsyncPredictor.map` does (a
            :class:`~aiosagemaker.RetryPolicy`); a row's outcome is its last attempt's.
        cleanup: ``"inputs"`` or ``"all"``, as for :meth:`AsyncPredictor.map`: delete what the
            actor uploaded (and with ``"all"`` the result objects) once read. ``map``'s
            ``max_failure_ratio`` is not offered here: a failure is a row, and a job that must
            stop on failures can check the ``error_type`` column.
        region_name: AWS region of every client (default: the standard chain).
        endpoint_urls: Endpoint URL per service name (``"s3"``, ``"sagemaker-runtime"``,
            ``"sagemaker"``, ``"sts"``, ``"sqs"``); default: the standard chain, including
            ``AWS_ENDPOINT_URL_*`` variables.
        num_actors: How many actors run this mapper (the ``ActorPoolStrategy`` size); the
            cluster-wide figures below are divided by it.
        cluster_s3_requests_per_second: S3 request budget of the waiting engines of all
            actors together (default 200, the predictor's default for one process); each
            actor gets ``cluster_s3_requests_per_second / num_actors``.
        cluster_max_concurrency: Most S3 requests in flight over all actors; each actor gets
            ``cluster_max_concurrency // num_actors`` (default: the predictor's, per actor).
        on_close: Called in the actor with an :class:`ActorSummary` after its predictor is
            closed (e.g. to log or export per-actor counts). Must be picklable.
        **predictor_kwargs: Any other :class:`~aiosagemaker.AsyncPredictor` argument
            (``default_bucket``, ``inline``, ``input_prefix``, ``client_config``, ...).

    Each row gains ``result``, ``error_type`` (the exception's class name), ``error_message``,
    ``inference_id`` and ``output_location`` (where the result is or would be in S3); on
    success the error columns are null, on failure ``result`` is null.
    """

    def __init__(
        self,
        endpoint_name: str,
        *,
        serializer: Serializer = IdentitySerializer(),  # noqa: B008 - immutable default
        deserializer: Deserializer = BytesDeserializer(),  # noqa: B008 - immutable default
        column: str = "data",
        concurrency: int = 64,
        waiter_config: WaiterConfig | None = None,
        result_format: ResultFormat = "json",
        initial_args: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        cleanup: Literal["inputs", "all"] | None = None,
        region_name: str | None = None,
        endpoint_urls: Mapping[str, str] | None = None,
        num_actors: int = 1,
        cluster_s3_requests_per_second: float = DEFAULT_S3_REQUESTS_PER_SECOND,
        cluster_max_concurrency: int | None = None,
        on_close: Callable[[ActorSummary], None] | None = None,
        **predictor_kwargs: Any,
    ) -> None:
        for name in predictor_kwargs:
            if name in _RESERVED:
                raise TypeError(f"AsyncInferenceMapper takes no {name}=; use {_RESERVED[name]}")
            if name not in _PREDICTOR_KWARGS:
                raise TypeError(
                    f"AsyncInferenceMapper got an unexpected argument {name!r}; it takes its "
                    f"own arguments and AsyncPredictor's ({', '.join(sorted(_PREDICTOR_KWARGS))})"
                )
        if not isinstance(column, str) or not column:
            raise ValueError(f"column must be a non-empty column name, got {column!r}")
        check_positive("concurrency", concurrency, integer=True)
        check_positive("num_actors", num_actors, integer=True)
        if result_format not in ("json", "raw"):
            raise ValueError(f"result_format must be 'json' or 'raw', got {result_format!r}")
        check_waiter_config(waiter_config, none="for the predictor's")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, got {type(retry).__name__}")
        if cleanup not in (None, "inputs", "all"):
            raise ValueError(f"cleanup must be None, 'inputs' or 'all', got {cleanup!r}")
        if on_close is not None and not callable(on_close):
            raise TypeError(f"on_close must be callable, got {type(on_close).__name__}")
        urls = _check_urls(endpoint_urls)
        if region_name is not None and not isinstance(region_name, str):
            raise TypeError(f"region_name must be a string, got {type(region_name).__name__}")
        s3_rate = _share(
            "cluster_s3_requests_per_second", cluster_s3_requests_per_second, num_actors
        )
        if cluster_max_concurrency is not None:
            check_positive("cluster_max_concurrency", cluster_max_concurrency, integer=True)
            if cluster_max_concurrency < num_actors:
                raise ValueError(
                    f"cluster_max_concurrency ({cluster_max_concurrency}) must be at least "
                    f"num_actors ({num_actors}): each actor needs one S3 request at a time"
                )
            predictor_kwargs["max_concurrency"] = cluster_max_concurrency // num_actors
        session = None if region_name is None and not urls else _EndpointSession(region_name, urls)
        # Built here, so that bad arguments fail the actor's start; opened on the first batch.
        self.predictor = AsyncPredictor(
            endpoint_name,
            session=session,
            serializer=serializer,
            deserializer=deserializer,
            s3_requests_per_second=s3_rate,
            **predictor_kwargs,
        )
        self.column = column
        self.concurrency = concurrency
        self.waiter_config = waiter_config
        self.result_format: ResultFormat = result_format
        self.initial_args = initial_args
        self.retry = retry
        self.cleanup: Literal["inputs", "all"] | None = cleanup
        self._on_close = on_close
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._slots: anyio.Semaphore | None = None
        self._batches = self._rows = self._failed = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<AsyncInferenceMapper endpoint_name={self.predictor.endpoint_name!r}>"

    # -- the batches ---------------------------------------------------------------------

    async def __call__(self, batch: Any) -> Any:
        """Run ``batch[column]`` through the endpoint; the batch with the outcome columns."""
        if self._closed:
            raise RuntimeError("this AsyncInferenceMapper is closed")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._slots = anyio.Semaphore(self.concurrency)
        table = RayBatch.of(batch)
        values = table.values(self.column)
        outcomes: dict[str, list[Any]] = {name: [None] * len(values) for name in OUTCOME_COLUMNS}
        if not values:
            return table.with_columns(outcomes)
        held = [0]  # slots taken by this batch and not given back yet
        try:
            async with self.predictor.map(
                self._gated(values, held),
                concurrency=self.concurrency,
                waiter_config=self.waiter_config,
                initial_args=self.initial_args,
                retry=self.retry,
                cleanup=self.cleanup,
            ) as run:
                async for outcome in run:
                    held[0] -= 1
                    assert self._slots is not None
                    self._slots.release()
                    self._record(outcomes, outcome)
        finally:
            assert self._slots is not None
            for _ in range(held[0]):
                self._slots.release()
        self._batches += 1
        self._rows += len(values)
        return table.with_columns(outcomes)

    async def _gated(self, values: Sequence[Any], held: list[int]) -> AsyncIterator[Any]:
        """The values, each taking one of the actor's ``concurrency`` slots."""
        assert self._slots is not None
        for value in values:
            await self._slots.acquire()
            held[0] += 1
            yield value

    def _record(self, columns: dict[str, list[Any]], outcome: Any) -> None:
        index, response, error = outcome.index, outcome.response, outcome.exception
        if response is not None:
            columns["inference_id"][index] = response.inference_id
            columns["output_location"][index] = response.output_path
        else:
            columns["inference_id"][index] = getattr(error, "inference_id", None)
            columns["output_location"][index] = getattr(error, "output_path", None)
        if error is None:
            try:
                columns["result"][index] = self._stored(outcome.result)
                return
            except (TypeError, ValueError) as refused:
                where = columns["output_location"][index]
                error = TypeError(
                    f"the result ({type(outcome.result).__name__}) has no JSON form ({refused}); "
                    f"it stays at {where}. Pass result_format='raw' to store it as it is, or a "
                    "deserializer that decodes it"
                )
        self._failed += 1
        columns["error_type"][index] = type(error).__name__
        columns["error_message"][index] = str(error)

    def _stored(self, result: Any) -> Any:
        if self.result_format == "raw":
            return result
        return json.dumps(result, default=_json_default)

    # -- closing -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the predictor (on its own event loop), then call ``on_close``."""
        if self._closed:
            return
        self._closed = True
        await self.predictor.close()
        logger.debug(
            "closed the predictor of %s after %d batches, %d rows, %d failed",
            self.predictor.endpoint_name,
            self._batches,
            self._rows,
            self._failed,
        )
        if self._on_close is not None:
            self._on_close(
                ActorSummary(self.predictor.endpoint_name, self._batches, self._rows, self._failed)
            )

    def close(self) -> None:
        """Close from any thread but the event loop's: runs :meth:`aclose` there and waits.

        Ray Data drops an actor's mapper when the actor shuts down gracefully, which calls
        this through ``__del__``. A mapper that never ran a batch has nothing open.
        """
        loop = self._loop
        if self._closed:
            return
        if loop is None or loop.is_closed() or not loop.is_running():
            if loop is not None:
                logger.warning("the event loop of %r has ended; its predictor was not closed", self)
            self._closed = True
            return
        if threading.get_ident() == self._loop_thread:
            # On the loop itself (a garbage collection there): schedule it, cannot wait.
            loop.create_task(self.aclose())
            return
        future = asyncio.run_coroutine_threadsafe(self.aclose(), loop)
        future.result(timeout=_CLOSE_TIMEOUT)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
