"""The batch's input file: one pass that counts its payloads, checks UTF-8 and fingerprints it.

Line numbers are the file's (1-based): a blank line (only whitespace) is no payload but
keeps its number, so an outcome's ``index`` is always its line number minus one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._errors import UserError

__all__ = ["InputScan", "read_lines", "scan_input"]

READ_HINT = 1 << 20
"""About 1 MiB of lines per read."""


@dataclass(frozen=True, slots=True)
class InputScan:
    """What one pass over the input found."""

    size: int
    sha256: str
    payloads: int
    blank: int

    @property
    def identity(self) -> dict[str, object]:
        """What the state file records, to refuse an input that changed."""
        return {"size": self.size, "sha256": self.sha256}


def read_lines(path: Path) -> Iterator[list[bytes]]:
    """The input's lines (with their line ends), in chunks of about :data:`READ_HINT` bytes."""
    with path.open("rb") as file:
        while chunk := file.readlines(READ_HINT):
            yield chunk


def scan_input(path: Path) -> InputScan:
    """Count, check and fingerprint the input; :class:`UserError` for a line not UTF-8."""
    digest = hashlib.sha256()
    size = payloads = blank = number = 0
    try:
        for chunk in read_lines(path):
            try:
                b"".join(chunk).decode("utf-8")
            except UnicodeDecodeError:
                _not_utf8(path, chunk, number)
            for raw in chunk:
                digest.update(raw)
                size += len(raw)
                if raw.strip():
                    payloads += 1
                else:
                    blank += 1
            number += len(chunk)
    except OSError as error:
        raise UserError(f"cannot read the input {path}: {error.strerror}") from None
    return InputScan(size, digest.hexdigest(), payloads, blank)


def _not_utf8(path: Path, chunk: list[bytes], before: int) -> None:
    for offset, raw in enumerate(chunk, start=before + 1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise UserError(
                f"line {offset} of the input {path} is not UTF-8 (byte {error.start + 1} of "
                "the line); the input must be UTF-8 JSON, one payload per line"
            ) from None
