"""Built-in models for the emulator, referenced as ``aiosagemaker.local.models:<name>``.

A model is called as ``fn(body, content_type, accept)`` and returns ``bytes``, ``str`` or
``(bytes, content_type)``; raising an exception makes the invocation fail like a model error.
"""

from __future__ import annotations

import json
import math


def echo(body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
    """Return the input unchanged, with its content type."""
    return body, content_type or "application/octet-stream"


def demo(body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
    """Summarise numbers: ``{"inputs": [1, 2, 3]}`` → ``{"sum": 6, "mean": 2.0, "count": 3}``.

    Raises:
        ValueError: The payload is not a JSON object with a non-empty ``inputs`` list of numbers.
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"demo model: input is not valid JSON ({exc})") from None
    if not isinstance(payload, dict) or "inputs" not in payload:
        raise ValueError('demo model: expected a JSON object like {"inputs": [1, 2, 3]}')
    inputs = payload["inputs"]
    if not isinstance(inputs, list) or not inputs:
        raise ValueError('demo model: "inputs" must be a non-empty list of numbers')
    for index, value in enumerate(inputs):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f'demo model: "inputs"[{index}] is not a number: {value!r}')
    total = sum(inputs)
    result = {"sum": total, "mean": total / len(inputs), "count": len(inputs)}
    return json.dumps(result).encode(), "application/json"
