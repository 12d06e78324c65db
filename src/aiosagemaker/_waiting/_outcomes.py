"""What a wait ends with: the result's locations, and the outcome types and messages.

Location names, one per concept. An inference's result is at its *output path* and a model
failure at its *failure path*: ``output_path`` / ``failure_path``, ``s3://bucket/key``
strings (the SDK's public names on responses, errors and tokens, and the name of every
parameter, local and attribute holding them). Parsed, they are :class:`ResultLocations`
``output`` / ``failure`` (:class:`S3Uri`, what the engine works with; the engine's entries and
listener waiters expose the same as strings under those names). ``OutputLocation`` /
``FailureLocation`` are only the InvokeEndpointAsync answer's fields, ``S3OutputPath`` /
``S3FailurePath`` only the endpoint config's prefixes, below which
:class:`.._naming.OutputNaming` works out where a request's result goes. ``output_location``
is only a field of the batch CLI's and the Ray mapper's output rows (and of SNS
notifications), ``expected_output`` only the CLI state file's column holding ``/<key>``: both
kept for the files and rows already written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._s3 import Fetched, S3Uri

__all__ = [
    "FAILURE_TEXT_MAX_BYTES",
    "STILL_RUNNING",
    "Completed",
    "Failed",
    "Outcome",
    "ResultLocations",
    "failure_text",
]

T = TypeVar("T")

STILL_RUNNING = (
    "Inference could still be running: the request may be queued (RequestTTLSeconds) or "
    "processing (InvocationTimeoutSeconds). Wait longer with a larger WaiterConfig, or check "
    "the endpoint's ApproximateBacklogSizePerInstance metric."
)

FAILURE_TEXT_MAX_BYTES = 64 * 1024
"""Most bytes of a failure file read into an error message (the rest stays in S3)."""


@dataclass(frozen=True, slots=True)
class ResultLocations:
    """Where one inference's result and failure file will appear."""

    output: S3Uri
    failure: S3Uri | None
    inference_id: str | None = None

    def context(self) -> dict[str, Any]:
        """The error-context keywords every exception about this inference carries."""
        return {
            "output_path": str(self.output),
            "failure_path": None if self.failure is None else str(self.failure),
            "inference_id": self.inference_id,
        }


@dataclass(frozen=True, slots=True)
class Completed(Generic[T]):
    """The output object exists; ``fetched.value`` is what ``consume`` made of its body."""

    fetched: Fetched[T]


@dataclass(frozen=True, slots=True)
class Failed:
    """The failure file exists; ``message`` is its text."""

    message: str


Outcome = Completed[T] | Failed


def failure_text(raw: bytes, location: S3Uri, *, cut: bool = False) -> str:
    """The failure file as text; never fails, says so when it is empty, cut or not UTF-8."""
    if not raw:
        return f"(the failure file at {location} is empty)"
    text = raw.decode("utf-8", errors="replace")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        # A cut file may end inside a character: only a bad byte before the cut counts.
        if not (cut and error.start >= len(raw) - 3):
            text = (
                f"(the failure file at {location} is not UTF-8 text; undecodable bytes "
                f"replaced) {text}"
            )
    if cut:
        text += f" [... cut at {len(raw):,} bytes; the whole failure file is at {location}]"
    return text
