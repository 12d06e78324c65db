"""aiosagemaker: asyncio-native client for Amazon SageMaker Async Inference.

Public names mirror the SageMaker Python SDK (``sagemaker.predictor_async``,
``sagemaker.async_inference``, ``sagemaker.exceptions``): migrate by adding ``await``.
Serializers and deserializers live in :mod:`aiosagemaker.serializers` and
:mod:`aiosagemaker.deserializers`; the most used ones are re-exported here.
"""

from ._batch import BatchOutcome, BatchProgress, BatchRun
from ._config import DEFAULT_WAITER_CONFIG, AsyncInferenceConfig, WaiterConfig
from ._exceptions import (
    AsyncInferenceError,
    AsyncInferenceModelError,
    BatchFailureRatioExceeded,
    EndpointNotFoundError,
    InvalidRequestError,
    InvalidTokenError,
    ObjectNotExistedError,
    PollingTimeoutError,
    PredictorClosedError,
    RequestNotSentError,
    ResultDeserializationError,
    ResultTooLargeError,
    SubmissionUncertainError,
    UnexpectedClientError,
    UnsupportedFeatureError,
)
from ._notifications import (
    NotificationQueue,
    NotificationQueueSetup,
    NotificationStats,
    ensure_notification_queue,
)
from ._policies import RetryPolicy
from ._predictor import AsyncPredictor
from ._response import AsyncInferenceResponse, InferenceStatus
from ._types import Deserializer, Serializer
from ._waiting._completion import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    as_completed,
    wait,
)
from .deserializers import (
    BytesDeserializer,
    CSVDeserializer,
    JSONDeserializer,
    JSONLinesDeserializer,
    NumpyDeserializer,
    PandasDeserializer,
    StreamDeserializer,
    StringDeserializer,
)
from .serializers import (
    CSVSerializer,
    IdentitySerializer,
    JSONLinesSerializer,
    JSONSerializer,
    NumpySerializer,
    StringSerializer,
)

__version__ = "0.1.0"

__all__ = [
    "ALL_COMPLETED",
    "DEFAULT_WAITER_CONFIG",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "AsyncInferenceConfig",
    "AsyncInferenceError",
    "AsyncInferenceModelError",
    "AsyncInferenceResponse",
    "AsyncPredictor",
    "BatchFailureRatioExceeded",
    "BatchOutcome",
    "BatchProgress",
    "BatchRun",
    "BytesDeserializer",
    "CSVDeserializer",
    "CSVSerializer",
    "Deserializer",
    "EndpointNotFoundError",
    "IdentitySerializer",
    "InferenceStatus",
    "InvalidRequestError",
    "InvalidTokenError",
    "JSONDeserializer",
    "JSONLinesDeserializer",
    "JSONLinesSerializer",
    "JSONSerializer",
    "NotificationQueue",
    "NotificationQueueSetup",
    "NotificationStats",
    "NumpyDeserializer",
    "NumpySerializer",
    "ObjectNotExistedError",
    "PandasDeserializer",
    "PollingTimeoutError",
    "PredictorClosedError",
    "RequestNotSentError",
    "ResultDeserializationError",
    "ResultTooLargeError",
    "RetryPolicy",
    "Serializer",
    "StreamDeserializer",
    "StringDeserializer",
    "StringSerializer",
    "SubmissionUncertainError",
    "UnexpectedClientError",
    "UnsupportedFeatureError",
    "WaiterConfig",
    "__version__",
    "as_completed",
    "ensure_notification_queue",
    "wait",
]
