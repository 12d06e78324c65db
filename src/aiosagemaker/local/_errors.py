"""The rest-json error shapes of ``sagemaker-runtime`` and how they go on the wire."""

from __future__ import annotations

import json


class ServiceError(Exception):
    """An error answered to the client: HTTP status, ``x-amzn-ErrorType`` and message."""

    status = 500
    error_type = "InternalFailure"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> bytes:
        """The rest-json error body ``{"message": ...}``."""
        return json.dumps({"message": self.message}).encode()


class ValidationError(ServiceError):
    """400: the request is invalid (botocore: ``client.exceptions.ValidationError``)."""

    status = 400
    error_type = "ValidationError"


class InternalFailure(ServiceError):
    """500: the emulator failed unexpectedly."""

    status = 500
    error_type = "InternalFailure"


class ServiceUnavailable(ServiceError):
    """503: the emulator is stopping, or a fault was injected."""

    status = 503
    error_type = "ServiceUnavailable"


class UnknownOperation(ServiceError):
    """404: no operation at this method and path."""

    status = 404
    error_type = "UnknownOperationException"
