"""Continuation tokens: what rebuilds a response elsewhere, optionally signed (HMAC-SHA256).

An unsigned token (version 1) is base64url JSON: whoever can hand one to a service can point it
at any S3 object the service may read. A signed token (version 2) carries an HMAC-SHA256 of
its content under a key the service keeps (``key=`` or the ``AIOSAGEMAKER_TOKEN_KEY``
environment variable); a predictor with a key refuses unsigned and altered tokens.
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

__all__ = ["TOKEN_KEY_ENV", "decode_token", "encode_token", "token_key"]

TOKEN_KEY_ENV = "AIOSAGEMAKER_TOKEN_KEY"
"""Environment variable holding the signing key when ``key=`` is not given."""

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

    Raises:
        InvalidTokenError: malformed, of another version, altered, signed with another key,
            unsigned while a key is configured, or missing a field.
    """
    if not isinstance(token, str):
        raise InvalidTokenError(f"a continuation token is a str, got {type(token).__name__}")
    signed = token.startswith(_SIGNED_PREFIX)
    try:
        if signed:
            body_text, _, mac_text = token[len(_SIGNED_PREFIX) :].partition(".")
            body, mac = _unb64(body_text), _unb64(mac_text)
        else:
            body = base64.urlsafe_b64decode(token.encode())
        state: Any = json.loads(body)
    except (ValueError, binascii.Error, UnicodeError) as error:
        raise InvalidTokenError(
            "not an aiosagemaker continuation token (expected the string returned by "
            "AsyncInferenceResponse.continuation_token())"
        ) from error
    version = state.get("v") if isinstance(state, dict) else None
    if version not in (_UNSIGNED, _SIGNED) or (version == _SIGNED) != signed:
        raise InvalidTokenError(
            f"unsupported continuation token version {version!r}; this aiosagemaker reads "
            f"versions {_UNSIGNED} (unsigned) and {_SIGNED} (signed)"
        )
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
    _check_fields(state)
    return dict(state), signed


def _check_fields(state: dict[str, Any]) -> None:
    for name in ("endpoint_name", "output_path"):
        if not isinstance(state.get(name), str) or not state[name]:
            raise InvalidTokenError(f"the continuation token has no valid {name!r}")
    for name in ("failure_path", "inference_id"):
        if state.get(name) is not None and not isinstance(state[name], str):
            raise InvalidTokenError(f"the continuation token's {name!r} is not a string")
