"""Continuation tokens: what rebuilds a response elsewhere, optionally signed (HMAC-SHA256).

An unsigned token (version 1) is base64url JSON: whoever can hand one to a service can point it
at any S3 object the service may read, so a predictor accepts one only inside its endpoint's
result prefixes (see ``AsyncPredictor.response_from_token``). A signed token (version 2)
carries an HMAC-SHA256 of its content under a key the service keeps (``key=`` or the
``AIOSAGEMAKER_TOKEN_KEY`` environment variable); a predictor with a key refuses unsigned and
altered tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from typing import Any

from ._exceptions import InvalidTokenError

__all__ = [
    "MAX_TOKEN_CHARS",
    "TOKEN_KEY_ENV",
    "ResultPrefixes",
    "decode_token",
    "encode_token",
    "token_key",
]

TOKEN_KEY_ENV = "AIOSAGEMAKER_TOKEN_KEY"
"""Environment variable holding the signing key when ``key=`` is not given."""

MAX_TOKEN_CHARS = 8192
"""Longer tokens are refused unread (a token holds two S3 URIs of at most ~1 KB each)."""

_UNSIGNED, _SIGNED = 1, 2
_SIGNED_PREFIX = "v2."


def token_key(key: str | bytes | None) -> bytes | None:
    """The signing key: ``key`` itself, else the environment variable, else None."""
    if key is None:
        key = os.environ.get(TOKEN_KEY_ENV) or None
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes) or len(key) < 16:
        raise ValueError(
            "a token signing key must be a str or bytes of at least 16 bytes (for example "
            "secrets.token_urlsafe(32)); got "
            + (f"{len(key)} bytes" if isinstance(key, bytes) else type(key).__name__)
        )
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()


def encode_token(state: dict[str, Any], key: bytes | None) -> str:
    """The token for ``state``: signed when there is a key, version 1 otherwise."""
    if key is None:
        body = json.dumps({"v": _UNSIGNED, **state}).encode()
        return base64.urlsafe_b64encode(body).decode()
    body = json.dumps({"v": _SIGNED, **state}, separators=(",", ":"), sort_keys=True).encode()
    return f"{_SIGNED_PREFIX}{_b64(body)}.{_b64(_mac(key, body))}"


def decode_token(token: str, key: bytes | None) -> tuple[dict[str, Any], bool]:
    """The state of a token and whether it was signed (and verified).

    The size, the signature and the nesting are checked before the JSON is parsed, so that a
    hostile token costs no more than reading :data:`MAX_TOKEN_CHARS` characters.

    Raises:
        InvalidTokenError: malformed, too large, too deeply nested, of another version,
            altered, signed with another key, unsigned while a key is configured, or missing
            a field.
    """
    if not isinstance(token, str):
        raise InvalidTokenError(f"a continuation token is a str, got {type(token).__name__}")
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidTokenError(
            f"the continuation token is {len(token):,} characters long; tokens made by "
            f"AsyncInferenceResponse.continuation_token() have at most {MAX_TOKEN_CHARS:,}"
        )
    signed = token.startswith(_SIGNED_PREFIX)
    try:
        if signed:
            body_text, _, mac_text = token[len(_SIGNED_PREFIX) :].partition(".")
            body, mac = _unb64(body_text), _unb64(mac_text)
        else:
            body = base64.urlsafe_b64decode(token.encode("ascii"))
    except (ValueError, binascii.Error, UnicodeError) as error:
        raise _not_a_token() from error
    if signed:
        if key is None:
            raise InvalidTokenError(
                "this continuation token is signed: pass the key it was signed with "
                f"(key=...) or set {TOKEN_KEY_ENV}"
            )
        if not hmac.compare_digest(mac, _mac(key, body)):
            raise InvalidTokenError(
                "the continuation token's signature does not match: it was altered, or signed "
                "with another key"
            )
    elif key is not None:
        raise InvalidTokenError(
            "an unsigned continuation token was given to a predictor that has a signing key; "
            "issue tokens with continuation_token(key=...) so they can be verified"
        )
    state = _parse(body)
    version = state.get("v")
    if version not in (_UNSIGNED, _SIGNED) or (version == _SIGNED) != signed:
        raise InvalidTokenError(
            f"unsupported continuation token version {version!r}; this aiosagemaker reads "
            f"versions {_UNSIGNED} (unsigned) and {_SIGNED} (signed)"
        )
    _check_fields(state)
    return state, signed


def _not_a_token() -> InvalidTokenError:
    return InvalidTokenError(
        "not an aiosagemaker continuation token (expected the string returned by "
        "AsyncInferenceResponse.continuation_token())"
    )


def _parse(body: bytes) -> dict[str, Any]:
    """The token's JSON object: flat (no nested object or array), ASCII, checked before parsing."""
    if not body.isascii() or not _flat_object(body):
        raise _not_a_token()
    try:
        state: Any = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise _not_a_token() from error
    if not isinstance(state, dict):
        raise _not_a_token()
    return state


def _flat_object(body: bytes) -> bool:
    """Whether ``body`` nests no bracket inside its outer object (strings skipped)."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            depth += 1
            if depth > 1:
                return False
        elif byte in (0x7D, 0x5D):
            depth -= 1
    return True


def _check_fields(state: dict[str, Any]) -> None:
    for name in ("endpoint_name", "output_path"):
        if not isinstance(state.get(name), str) or not state[name]:
            raise InvalidTokenError(f"the continuation token has no valid {name!r}")
    for name in ("failure_path", "inference_id"):
        if state.get(name) is not None and not isinstance(state[name], str):
            raise InvalidTokenError(f"the continuation token's {name!r} is not a string")


class ResultPrefixes:
    """Where an endpoint writes results: the S3 prefixes an unsigned token may point into.

    Compared on the parsed bucket and key, never as strings: a location is inside a prefix when
    it has the same bucket, its key starts with the prefix's key (which ends at a ``/``), and
    its key has no ``.``, ``..`` or empty (``//``) segment that an HTTP client could fold away.
    """

    def __init__(self) -> None:
        self._prefixes: set[tuple[str, str]] = set()

    def __bool__(self) -> bool:
        return bool(self._prefixes)

    def __str__(self) -> str:
        return ", ".join(f"s3://{bucket}/{key}" for bucket, key in sorted(self._prefixes))

    def add(self, uri: str, *, what: str = "result prefix") -> None:
        """Allow everything under ``uri`` (``s3://bucket`` or ``s3://bucket/prefix``)."""
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise ValueError(f"a {what} must be an 's3://bucket/prefix' string, got {uri!r}")
        bucket, _, key = uri[len("s3://") :].partition("/")
        key = key.rstrip("/")
        if not bucket or not _clean_key(key or "x"):
            raise ValueError(
                f"a {what} must name a bucket and a prefix without '.', '..' or empty "
                f"segments, got {uri!r}"
            )
        self._prefixes.add((bucket, f"{key}/" if key else ""))

    def refusal(self, bucket: str, key: str) -> str | None:
        """Why ``s3://bucket/key`` is not inside a prefix (None when it is)."""
        if not _clean_key(key):
            return "its key has a '.', '..' or empty ('//') segment"
        if not any(bucket == b and key.startswith(prefix) for b, prefix in self._prefixes):
            return f"it is outside the result locations of the endpoint ({self})"
        return None

    def check_unsigned(self, locations: list[str | None], endpoint_name: str) -> None:
        """Raise InvalidTokenError unless every location of an unsigned token is inside."""
        if not self._prefixes:
            raise InvalidTokenError(
                f"an unsigned continuation token cannot be checked: the result locations of "
                f"endpoint {endpoint_name!r} are not known (its config could not be read: "
                "sagemaker:DescribeEndpoint and DescribeEndpointConfig). Sign tokens "
                "(continuation_token(key=...)), pass AsyncPredictor(result_prefixes=[...]), or "
                "pass allow_foreign=True if you trust where the token came from"
            )
        for location in filter(None, locations):
            bucket, _, key = location.removeprefix("s3://").partition("/")
            reason = self.refusal(bucket, key)
            if reason is not None:
                raise InvalidTokenError(
                    f"the unsigned token points at {location}, but {reason}; sign tokens "
                    "(continuation_token(key=...)), or pass allow_foreign=True if you trust "
                    "where it came from"
                )


def _clean_key(key: str) -> bool:
    return all(segment not in ("", ".", "..") for segment in key.split("/"))
