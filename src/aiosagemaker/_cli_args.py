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


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value
