"""The exception tree keeps the SDK's message formats and carries its context."""

from __future__ import annotations

import pickle

import pytest

from aiosagemaker import (
    AsyncInferenceError,
    AsyncInferenceModelError,
    EndpointNotFoundError,
    ObjectNotExistedError,
    PollingTimeoutError,
    ResultDeserializationError,
    UnexpectedClientError,
    UnsupportedFeatureError,
)

OUT = "s3://bucket/out/abc.out"


def test_sdk_message_formats() -> None:
    assert str(ObjectNotExistedError("still running", OUT)) == (
        f"Object not exist at {OUT}. still running"
    )
    assert str(PollingTimeoutError("still running", OUT, 12.5)) == (
        f"No result at {OUT} after polling for 12.5 seconds. still running"
    )
    assert str(AsyncInferenceModelError("boom")) == "Model returned error: boom "
    assert str(UnexpectedClientError("denied")) == "Encountered unexpected client error: denied"


def test_hierarchy() -> None:
    for cls in (
        ObjectNotExistedError,
        PollingTimeoutError,
        AsyncInferenceModelError,
        ResultDeserializationError,
        UnexpectedClientError,
        UnsupportedFeatureError,
    ):
        assert issubclass(cls, AsyncInferenceError)
    assert issubclass(PollingTimeoutError, TimeoutError)
    assert issubclass(EndpointNotFoundError, UnexpectedClientError)


def test_context_attributes() -> None:
    error = PollingTimeoutError(
        "m", OUT, 3.0, attempts=4, failure_path="s3://b/f", inference_id="id-1"
    )
    assert (error.output_path, error.failure_path, error.inference_id) == (OUT, "s3://b/f", "id-1")
    assert (error.seconds, error.attempts, error.message) == (3.0, 4, "m")
    assert error.kwargs == {"message": "m", "output_path": OUT, "seconds": 3.0}


@pytest.mark.parametrize(
    "error",
    [
        ObjectNotExistedError("m", OUT, inference_id="i"),
        PollingTimeoutError("m", OUT, 1.5, attempts=2, inference_id="i"),
        AsyncInferenceModelError("bad input", output_path=OUT, failure_path="s3://b/f"),
        UnexpectedClientError("denied", code="AccessDenied"),
        EndpointNotFoundError("gone", endpoint_name="ep", code="ValidationError"),
        ResultDeserializationError("bad", OUT, "text/plain", "JSONDeserializer"),
        UnsupportedFeatureError("too old"),
    ],
)
def test_exceptions_pickle_round_trip(error: AsyncInferenceError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__
