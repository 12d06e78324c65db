"""Service limits of SageMaker Async Inference shared by the client and the local emulator.

Values come from botocore's ``sagemaker-runtime`` service model (2017-05-13) and the AWS docs.
"""

from __future__ import annotations

INLINE_BODY_MAX_BYTES = 128_000
"""Largest payload InvokeEndpointAsync accepts inline in ``Body`` (botocore >= 1.43.29)."""

NOTIFICATION_RESPONSE_MAX_BYTES = 128 * 1024
"""Largest response SageMaker embeds in a notification (``IncludeInferenceResponseIn``)."""

ENDPOINT_NAME_MAX = 63
HEADER_VALUE_MAX = 1024
INFERENCE_ID_MAX = 64
INPUT_LOCATION_MAX = 1024
REQUEST_TTL_SECONDS_MIN = 60
REQUEST_TTL_SECONDS_MAX = 21_600
REQUEST_TTL_SECONDS_DEFAULT = 21_600
INVOCATION_TIMEOUT_SECONDS_MIN = 1
INVOCATION_TIMEOUT_SECONDS_MAX = 3_600
INVOCATION_TIMEOUT_SECONDS_DEFAULT = 900
S3_OUTPUT_PATH_EXTENSION_MAX = 512
FILENAME_MAX = 32
MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE_MIN = 1
MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE_MAX = 1000
