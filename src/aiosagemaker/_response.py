"""AsyncInferenceResponse: the awaitable handle to one submitted inference."""

from __future__ import annotations

import base64
import binascii
import enum
import io
import json
import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from ._config import WaiterConfig
from ._exceptions import AsyncInferenceModelError, ResultDeserializationError
from ._s3 import Consume, Fetched, S3Uri, read_all
from ._waiting import Completed, ResultLocations

if TYPE_CHECKING:
    from ._predictor import AsyncPredictor

__all__ = ["AsyncInferenceResponse", "InferenceStatus"]

T = TypeVar("T")
_TOKEN_VERSION = 1
_UNSET: Any = object()


class InferenceStatus(str, enum.Enum):
    """What this handle knows so far (no request is made to find out)."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"


class AsyncInferenceResponse:
    """Handle to an inference submitted with ``predict_async``.

    ``await response`` waits with the predictor's WaiterConfig; ``get_result()`` with no
    argument makes a single check (the SDK's semantics). A result is fetched once and cached;
    a model failure is remembered too. Cancelling a wait stops only the client-side polling:
    the inference goes on and the response can be awaited again.

    Example:
        >>> response = await predictor.predict_async(data=b"...")
        >>> result = await response.get_result(WaiterConfig(max_attempts=120, delay=1))
    """

    def __init__(
        self,
        predictor_async: AsyncPredictor,
        output_path: str,
        failure_path: str | None,
        inference_id: str | None = None,
    ) -> None:
        self.predictor_async = predictor_async
        self.output_path = output_path
        self.failure_path = failure_path
        self.inference_id = inference_id
        self._locations = ResultLocations(
            output=S3Uri.parse(output_path, what="OutputLocation"),
            failure=None
            if failure_path is None
            else S3Uri.parse(failure_path, what="FailureLocation"),
            inference_id=inference_id,
        )
        self._result: Any = _UNSET
        self._failure: str | None = None

    def __repr__(self) -> str:
        return (
            f"<AsyncInferenceResponse {self.status.value} inference_id={self.inference_id!r} "
            f"output_path={self.output_path!r}>"
        )

    @property
    def status(self) -> InferenceStatus:
        """IN_PROGRESS until a wait has seen the result or the failure."""
        if self._result is not _UNSET:
            return InferenceStatus.COMPLETED
        if self._failure is not None:
            return InferenceStatus.FAILED
        return InferenceStatus.IN_PROGRESS

    def done(self) -> bool:
        """Whether a result or a failure has been seen (no request is made)."""
        return self.status is not InferenceStatus.IN_PROGRESS

    def __await__(self) -> Generator[Any, None, Any]:
        return self.get_result(self.predictor_async.waiter_config).__await__()

    async def get_result(self, waiter_config: WaiterConfig | None = None) -> Any:
        """Return the decoded result.

        Args:
            waiter_config: How long to wait; None makes one check without waiting.

        Raises:
            ObjectNotExistedError: single check, no result yet.
            PollingTimeoutError: the WaiterConfig ran out.
            AsyncInferenceModelError: the endpoint wrote a failure file.
            ResultDeserializationError: the result could not be decoded (it stays in S3).
            UnexpectedClientError: an AWS error polling cannot fix (access denied, ...).
        """
        _check_waiter_config(waiter_config)
        if self._result is not _UNSET:
            return self._result
        self._raise_if_failed()
        fetched = await self._wait(waiter_config, read_all)
        result = self._decode(fetched.value, fetched.content_type)
        self._result = result
        return result

    async def download(
        self,
        path: str | os.PathLike[str],
        waiter_config: WaiterConfig | None = None,
        *,
        chunk_size: int = 1024 * 1024,
    ) -> str:
        """Stream the result object to ``path`` with bounded memory; return its ContentType.

        For results too large to hold in memory. The deserializer is not used. Waits like
        :meth:`get_result`; a model failure raises :class:`AsyncInferenceModelError`.
        """
        _check_waiter_config(waiter_config)
        self._raise_if_failed()

        async def to_file(body: Any) -> int:
            written = 0
            async with await anyio.open_file(path, "wb") as file:
                while chunk := await body.read(chunk_size):
                    await file.write(chunk)
                    written += len(chunk)
            return written

        fetched = await self._wait(waiter_config, to_file)
        return fetched.content_type

    def continuation_token(self) -> str:
        """An opaque string that rebuilds this handle with ``AsyncPredictor.response_from_token``.

        It holds the endpoint name, both S3 locations and the inference id (no credentials).
        """
        state = {
            "v": _TOKEN_VERSION,
            "endpoint_name": self.predictor_async.endpoint_name,
            "output_path": self.output_path,
            "failure_path": self.failure_path,
            "inference_id": self.inference_id,
        }
        return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()

    async def _wait(self, waiter_config: WaiterConfig | None, consume: Consume[T]) -> Fetched[T]:
        strategy = await self.predictor_async._wait_strategy()
        outcome = await strategy.wait(self._locations, waiter_config, consume)
        if isinstance(outcome, Completed):
            return outcome.fetched
        self._failure = outcome.message
        raise AsyncInferenceModelError(self._failure, **self._locations.context())

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise AsyncInferenceModelError(self._failure, **self._locations.context())

    def _decode(self, body: bytes, content_type: str) -> Any:
        deserializer = self.predictor_async.deserializer
        try:
            return deserializer.deserialize(io.BytesIO(body), content_type)
        except Exception as error:
            raise ResultDeserializationError(
                f"{type(error).__name__}: {error}",
                content_type=content_type,
                deserializer=type(deserializer).__name__,
                **self._locations.context(),
            ) from error


def _check_waiter_config(waiter_config: object) -> None:
    if waiter_config is not None and not isinstance(waiter_config, WaiterConfig):
        raise ValueError(
            "waiter_config should be a WaiterConfig object, got "
            f"{type(waiter_config).__name__}; use aiosagemaker.WaiterConfig(max_attempts=..., "
            "delay=...), or None for a single check"
        )


def parse_token(token: str) -> dict[str, Any]:
    """Decode a continuation token; ``ValueError`` saying what is wrong otherwise."""
    try:
        state: Any = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error, AttributeError) as error:
        raise ValueError(
            "not an aiosagemaker continuation token (expected the string returned by "
            "AsyncInferenceResponse.continuation_token())"
        ) from error
    version = state.get("v") if isinstance(state, dict) else None
    if version != _TOKEN_VERSION:
        raise ValueError(
            f"unsupported continuation token version {version!r}; this aiosagemaker reads "
            f"version {_TOKEN_VERSION}"
        )
    return dict(state)
