"""Command-line plumbing shared by ``aiosagemaker`` and ``aiosagemaker local``.

Errors are one ``aiosagemaker: error: ...`` line on stderr and exit code 2. Standard library
only, so that the emulator can use it without depending on the client.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

__all__ = ["EXIT_USAGE", "OneLineParser", "fail", "non_negative_int", "positive_int"]

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Write the first line of ``message`` as an error and exit with ``code``."""
    text = str(message).strip()
    sys.stderr.write(f"aiosagemaker: error: {text.splitlines()[0] if text else 'error'}\n")
    raise SystemExit(code)


def _int_at_least(minimum: int, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    return _int_at_least(1, text)


def non_negative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    return _int_at_least(0, text)
