"""The public surface is pinned: a change to it is a deliberate, visible change."""

from __future__ import annotations

import aiosagemaker

EXPECTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    assert aiosagemaker.__all__ == EXPECTED

    # isort-style, as ruff keeps it: CONSTANTS, then Classes, then functions, each sorted
    def kind(name: str) -> int:
        return 0 if name.isupper() else 1 if name[0].isupper() else 2

    assert sorted(aiosagemaker.__all__, key=lambda n: (kind(n), n)) == aiosagemaker.__all__


def test_every_exported_name_exists() -> None:
    for name in aiosagemaker.__all__:
        assert hasattr(aiosagemaker, name), name


def test_client_does_not_import_the_emulator() -> None:
    import subprocess
    import sys

    code = (
        "import sys, aiosagemaker; "
        "assert not any(m.startswith('aiosagemaker.local') for m in sys.modules), "
        "[m for m in sys.modules if m.startswith('aiosagemaker.local')]; "
        "assert 'moto' not in sys.modules and 'numpy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
