"""The public surface is pinned: a change to it is a deliberate, visible change."""

from __future__ import annotations

import aiosagemaker

EXPECTED = [
    "AsyncInferenceConfig",
    "AsyncInferenceError",
    "AsyncInferenceModelError",
    "AsyncInferenceResponse",
    "AsyncPredictor",
    "BytesDeserializer",
    "CSVDeserializer",
    "CSVSerializer",
    "Deserializer",
    "EndpointNotFoundError",
    "IdentitySerializer",
    "InferenceStatus",
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
    "ResultDeserializationError",
    "Serializer",
    "StreamDeserializer",
    "StringDeserializer",
    "StringSerializer",
    "UnexpectedClientError",
    "UnsupportedFeatureError",
    "WaiterConfig",
    "__version__",
    "ensure_notification_queue",
]


def test_all_is_pinned_and_sorted() -> None:
    assert aiosagemaker.__all__ == EXPECTED
    assert sorted(aiosagemaker.__all__) == aiosagemaker.__all__


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
