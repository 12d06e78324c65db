"""The exception tree of aiosagemaker.

Names and message formats mirror ``sagemaker.exceptions`` so that code matching on them keeps
working::

    AsyncInferenceError                    base of everything raised about an inference
    ├── ObjectNotExistedError              a single check found no result yet
    ├── PollingTimeoutError                waiting ran out (also a built-in TimeoutError)
    ├── AsyncInferenceModelError           the model failed: the failure file's text
    ├── ResultDeserializationError         the result is in S3 but could not be decoded
    ├── ResultTooLargeError                the result is over max_result_bytes (use download)
    ├── UnexpectedClientError              an AWS or transport error that waiting cannot fix
    │   └── EndpointNotFoundError          InvokeEndpointAsync named an unknown endpoint
    ├── SubmissionUncertainError           InvokeEndpointAsync may have been accepted
    ├── UnsupportedFeatureError            the installed botocore lacks an API feature
    ├── InvalidTokenError                  a continuation token is malformed or not trusted
    ├── PredictorClosedError               the predictor was closed while a wait was pending
    ├── BatchFailureRatioExceeded          map(max_failure_ratio=...) stopped the batch
    └── RequestNotSentError                the request provably never left the client
        └── InvalidRequestError            ... because an argument or header is invalid

Usage mistakes (wrong argument types or values) raise plain ``TypeError`` / ``ValueError``.
Every error carries, as attributes, the S3 locations and the inference id it concerns.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AsyncInferenceError",
    "AsyncInferenceModelError",
    "BatchFailureRatioExceeded",
    "EndpointNotFoundError",
    "InvalidRequestError",
    "InvalidTokenError",
    "ObjectNotExistedError",
    "PollingTimeoutError",
    "PredictorClosedError",
    "RequestNotSentError",
    "ResultDeserializationError",
    "ResultTooLargeError",
    "SubmissionUncertainError",
    "UnexpectedClientError",
    "UnsupportedFeatureError",
]


class AsyncInferenceError(Exception):
    """Base class: formats ``fmt`` with the keyword arguments, kept in ``kwargs``.

    Context attributes (``output_path``, ``failure_path``, ``inference_id``) default to None and
    are filled in wherever the library knows them.
    """

    fmt = "An unspecified error occurred"

    def __init__(
        self,
        *,
        output_path: str | None = None,
        failure_path: str | None = None,
        inference_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        if output_path is not None:
            kwargs.setdefault("output_path", output_path)
        super().__init__(self.fmt.format(**kwargs))
        self.kwargs = kwargs
        self.output_path = output_path
        self.failure_path = failure_path
        self.inference_id = inference_id

    def __reduce__(self) -> tuple[Any, ...]:
        context = {
            "output_path": self.output_path,
            "failure_path": self.failure_path,
            "inference_id": self.inference_id,
        }
        return (_rebuild, (type(self), dict(self.kwargs), context), self.__dict__)


def _rebuild(
    cls: type[AsyncInferenceError], kwargs: dict[str, Any], context: dict[str, Any]
) -> AsyncInferenceError:
    error = cls.__new__(cls)
    AsyncInferenceError.__init__(error, **{**kwargs, **context})
    return error


class ObjectNotExistedError(AsyncInferenceError):
    """A single check (``get_result()`` without a WaiterConfig) found no result yet."""

    fmt = "Object not exist at {output_path}. {message}"

    def __init__(self, message: str, output_path: str, **context: Any) -> None:
        super().__init__(message=message, output_path=output_path, **context)
        self.message = message


class PollingTimeoutError(AsyncInferenceError, TimeoutError):
    """Waiting ended (attempts or overall timeout) with neither a result nor a failure.

    ``seconds`` is the time actually waited; ``attempts`` the number of checks made.
    """

    fmt = "No result at {output_path} after polling for {seconds} seconds. {message}"

    def __init__(
        self, message: str, output_path: str, seconds: float, *, attempts: int = 0, **context: Any
    ) -> None:
        super().__init__(message=message, output_path=output_path, seconds=seconds, **context)
        self.message = message
        self.seconds = seconds
        self.attempts = attempts


class AsyncInferenceModelError(AsyncInferenceError):
    """The endpoint wrote a failure file; ``message`` is its text, verbatim."""

    fmt = "Model returned error: {message} "

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message=message, **context)
        self.message = message


class ResultDeserializationError(AsyncInferenceError):
    """The result object exists but the deserializer could not decode it.

    The object is left in S3 untouched; ``output_path`` names it and ``content_type`` is the
    type S3 reported. The deserializer's exception is chained as ``__cause__``.
    """

    fmt = (
        "Could not decode the result at {output_path} (ContentType {content_type!r}) with "
        "{deserializer}: {message}. The object is still in S3; fetch it with another "
        "deserializer (for example BytesDeserializer) or fix the model's output format."
    )

    def __init__(
        self,
        message: str,
        output_path: str,
        content_type: str,
        deserializer: str,
        **context: Any,
    ) -> None:
        super().__init__(
            message=message,
            output_path=output_path,
            content_type=content_type,
            deserializer=deserializer,
            **context,
        )
        self.message = message
        self.content_type = content_type


class ResultTooLargeError(AsyncInferenceError):
    """The result is larger than the predictor's ``max_result_bytes``; it was not read.

    ``size`` is the object's size and ``limit`` the predictor's limit. The object stays in S3:
    stream it to a file with ``response.download(path)``, or raise ``max_result_bytes``.
    """

    fmt = (
        "The result at {output_path} is {size_text} bytes, more than max_result_bytes={limit:,}, "
        "so it was not read into memory. It is still in S3: stream it to a file with "
        "response.download(path), or pass a larger AsyncPredictor(max_result_bytes=...)."
    )

    def __init__(
        self, output_path: str, size: int, limit: int, *, exact: bool = True, **context: Any
    ) -> None:
        # exact=False: S3 sent no Content-Length; ``size`` is what was read before stopping
        size_text = f"{size:,}" if exact else f"at least {size:,}"
        super().__init__(
            output_path=output_path, size=size, limit=limit, size_text=size_text, **context
        )
        self.size = size
        self.limit = limit


class UnexpectedClientError(AsyncInferenceError):
    """An AWS error that waiting cannot fix (access denied, missing bucket, bad request).

    Also a transport error that outlasted the retries (endpoint unreachable, timeouts).
    ``code`` is the AWS error code when there is one (None for a transport error); the
    botocore error is chained.
    """

    fmt = "Encountered unexpected client error: {message}"

    def __init__(self, message: str, *, code: str | None = None, **context: Any) -> None:
        super().__init__(message=message, **context)
        self.message = message
        self.code = code


class EndpointNotFoundError(UnexpectedClientError):
    """InvokeEndpointAsync was answered with "endpoint not found"."""

    def __init__(self, message: str, *, endpoint_name: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.endpoint_name = endpoint_name


class SubmissionUncertainError(AsyncInferenceError):
    """InvokeEndpointAsync may or may not have been accepted: its answer was lost.

    Resubmitting could run the inference twice, so the library does not (unless the
    predictor has ``submit_retries="at-least-once"``). ``inference_id`` is the id that was
    sent; ``output_path`` / ``failure_path`` are where the result will be if the request was
    accepted (None when the endpoint's locations are not known yet); ``response`` is a handle
    that waits on them (None likewise; not kept when pickled). The transport or AWS error is
    chained.
    """

    fmt = "{message}"

    def __init__(self, message: str, *, response: Any = None, **context: Any) -> None:
        super().__init__(message=message, **context)
        self.message = message
        self.response = response

    def __reduce__(self) -> tuple[Any, ...]:
        rebuilt = super().__reduce__()
        state = {**rebuilt[2], "response": None}
        return (rebuilt[0], rebuilt[1], state)


class UnsupportedFeatureError(AsyncInferenceError):
    """The installed botocore does not know an InvokeEndpointAsync feature that was asked for."""

    fmt = "{message}"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message=message, **context)
        self.message = message


class InvalidTokenError(AsyncInferenceError, ValueError):
    """A continuation token is malformed, altered, unsigned where a signature is required, or
    names another endpoint or result location than the predictor's (also a ``ValueError``)."""

    fmt = "{message}"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message=message, **context)
        self.message = message


class PredictorClosedError(AsyncInferenceError, RuntimeError):
    """The predictor was closed while this wait was pending (also a ``RuntimeError``).

    The inference goes on at the endpoint: reopen the predictor (``async with``) and wait on
    the response again. Chained to the error that closing interrupted, if any.
    """

    fmt = "{message}"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message=message, **context)
        self.message = message


class RequestNotSentError(AsyncInferenceError):
    """The request provably never left the client: no inference was started.

    Missing credentials or region, or (:class:`InvalidRequestError`) an invalid argument.
    Safe to fix and resend; never a :class:`SubmissionUncertainError`. The cause is chained.
    """

    fmt = "{message}"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message=message, **context)
        self.message = message


class InvalidRequestError(RequestNotSentError, ValueError):
    """An argument or header of the request is invalid, so it was not sent (a ``ValueError``)."""


class BatchFailureRatioExceeded(AsyncInferenceError):
    """A batch stopped submitting: the failed share of its finished inputs passed the limit.

    Raised by ``map(..., max_failure_ratio=...)`` after every outcome of what was in flight has
    been yielded. ``done`` inputs finished (``failed`` of them with an error); ``not_submitted``
    were never submitted (None when the inputs have no length).
    """

    fmt = "{message}"

    def __init__(
        self, message: str, *, done: int, failed: int, not_submitted: int | None, limit: float
    ) -> None:
        super().__init__(message=message)
        self.message = message
        self.done = done
        self.failed = failed
        self.not_submitted = not_submitted
        self.limit = limit
