"""The arguments of one InvokeEndpointAsync request: headers, payload, result naming fields.

:class:`RequestArgs` builds them for one predictor: the caller's ``initial_args`` with the
serializer's ContentType and the deserializer's Accept, the payload inline (``Body``) or as
an uploaded ``InputLocation``, and the ``S3OutputPathExtension``/``Filename`` that let a
lost answer still name its result location (see :class:`._naming.OutputNaming`).
Fields newer than the installed botocore raise :class:`UnsupportedFeatureError`.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from ._exceptions import UnsupportedFeatureError
from ._limits import INLINE_BODY_MAX_BYTES, S3_OUTPUT_PATH_EXTENSION_MAX
from ._validation import accept_header, check_headers, check_inference_id

__all__ = ["NEW_FIELDS", "ROTATE_EVERY", "RequestArgs", "supports", "to_payload", "too_old"]

NEW_FIELDS = {
    "Body": "1.43.29",
    "Filename": "1.42.54",
    "S3OutputPathExtension": "1.42.54",
}
"""InvokeEndpointAsync fields and the botocore version that added them."""
ROTATE_EVERY = 1000
"""Submissions per output sub-prefix: each listing then pages through at most this many keys."""
_EXTENSION_PATTERN = re.compile(r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$")
Inline = bool | Literal["auto"]


def supports(runtime: Any, field: str) -> bool:
    """Whether the runtime client's botocore knows InvokeEndpointAsync's ``field``."""
    model = runtime.meta.service_model.operation_model("InvokeEndpointAsync")
    return field in model.input_shape.members


def too_old(field: str) -> str:
    """Why ``field`` cannot be sent with the installed botocore, and how to fix it."""
    import botocore

    return (
        f"InvokeEndpointAsync field {field!r} needs botocore >= {NEW_FIELDS[field]}, but "
        f"botocore {botocore.__version__} is installed (aioboto3 15.x pins it). Install "
        "aiobotocore >= 3 (pip install -U 'aiobotocore>=3'), or leave the field out"
    )


def check_fields(runtime: Any, args: Mapping[str, Any]) -> None:
    """Refuse fields the installed botocore cannot send (UnsupportedFeatureError)."""
    for field in NEW_FIELDS:
        if field in args and not supports(runtime, field):
            raise UnsupportedFeatureError(too_old(field))


def to_payload(serialized: Any) -> bytes | Any:
    """Serializer output as bytes, or the readable file object itself."""
    if isinstance(serialized, str):
        return serialized.encode("utf-8")
    if isinstance(serialized, (bytes, bytearray, memoryview)):
        return bytes(serialized)
    if hasattr(serialized, "read"):
        return serialized
    raise TypeError(
        f"the serializer returned {type(serialized).__name__}; it must return bytes, str or a "
        "readable file-like object"
    )


def send_inline(inline: Inline, payload: Any, runtime: Any) -> bool:
    """Whether ``payload`` goes in the request (``Body``) rather than uploaded to S3."""
    if inline is False:
        return False
    fits = isinstance(payload, bytes) and len(payload) <= INLINE_BODY_MAX_BYTES
    if inline == "auto":
        return fits and supports(runtime, "Body")
    if not supports(runtime, "Body"):
        raise UnsupportedFeatureError(too_old("Body"))
    if not fits:
        size = f"{len(payload)} bytes" if isinstance(payload, bytes) else "a file object"
        raise ValueError(
            f"inline=True but the payload is {size}; InvokeEndpointAsync takes at most "
            f"{INLINE_BODY_MAX_BYTES} bytes inline. Use inline='auto' to upload larger "
            "payloads to S3 instead"
        )
    return True


def extension_base(extension: str | None) -> str | None:
    """The validated per-predictor ``S3OutputPathExtension`` ("auto": a random one)."""
    if extension is None:
        return None
    if extension == "auto":
        return f"aiosagemaker-{secrets.token_hex(4)}"
    if not isinstance(extension, str):
        raise TypeError(
            "output_path_extension must be a string, 'auto' or None, got "
            f"{type(extension).__name__}"
        )
    stripped = extension.strip("/")
    if (
        not stripped
        or len(stripped) > S3_OUTPUT_PATH_EXTENSION_MAX - 16
        or not _EXTENSION_PATTERN.match(stripped)
    ):
        raise ValueError(
            f"output_path_extension must be 1-{S3_OUTPUT_PATH_EXTENSION_MAX - 16} characters of "
            f"letters, digits and !_.*'()/- (not starting with s3: or https:), got {extension!r}; "
            "pass None to send none"
        )
    return stripped


class RequestArgs:
    """One predictor's InvokeEndpointAsync arguments.

    Args:
        output_path_extension: The predictor's ``output_path_extension`` ("auto", a string,
            or None); a sub-prefix is added per :data:`ROTATE_EVERY` submissions.
    """

    def __init__(self, output_path_extension: str | None) -> None:
        self.extension = extension_base(output_path_extension)
        self._explicit = output_path_extension not in (None, "auto")
        self._submitted = 0

    @staticmethod
    def build(
        initial_args: Mapping[str, Any] | None,
        inference_id: str | None,
        *,
        endpoint_name: str,
        content_type: str,
        accept: str | tuple[str, ...] | list[str],
    ) -> dict[str, Any]:
        """``initial_args`` checked, with the endpoint, headers and inference id filled in."""
        if initial_args is not None and not isinstance(initial_args, Mapping):
            raise TypeError(
                f"initial_args must be a dict of InvokeEndpointAsync arguments, got "
                f"{type(initial_args).__name__}"
            )
        args = dict(initial_args or {})
        for key in ("InputLocation", "Body"):
            if key in args:
                raise ValueError(
                    f"initial_args[{key!r}] is not used: pass the payload as data= or its S3 "
                    "location as input_path="
                )
        args.setdefault("EndpointName", endpoint_name)
        args.setdefault("ContentType", content_type)
        args.setdefault("Accept", accept_header(accept))
        if inference_id is not None:
            args["InferenceId"] = check_inference_id(inference_id)
        check_headers(args)
        return args

    def name_output(self, args: dict[str, Any], runtime: Any) -> None:
        """Add the rotating ``S3OutputPathExtension`` and a ``Filename`` (unless given).

        The client-chosen Filename lets a request whose answer was lost still tell where its
        result will be.
        """
        if self.extension is not None and "S3OutputPathExtension" not in args:
            if supports(runtime, "S3OutputPathExtension"):
                generation = self._submitted // ROTATE_EVERY
                self._submitted += 1
                args["S3OutputPathExtension"] = f"{self.extension}/{generation:x}"
            elif self._explicit:
                raise UnsupportedFeatureError(too_old("S3OutputPathExtension"))
        if "Filename" not in args and supports(runtime, "Filename"):
            args["Filename"] = f"{uuid.uuid4().hex[:24]}.out"  # at most 32 characters
