"""Streaming a result to a file (``AsyncInferenceResponse.download``): checks and writing."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import anyio

from ._s3 import Consume

__all__ = ["check_target", "file_writer"]


def file_writer(partial: Path, chunk_size: int) -> Consume[int]:
    """Reads a result body into ``partial`` chunk by chunk; returns the bytes written."""

    async def to_file(body: Any) -> int:
        written = 0
        async with await anyio.open_file(partial, "wb") as file:
            while chunk := await body.read(chunk_size):
                await file.write(chunk)
                written += len(chunk)
        return written

    return to_file


def check_target(target: Path) -> None:
    """Refuse a download target that cannot be written, before any waiting."""
    directory = target.parent
    if not directory.exists():
        raise FileNotFoundError(
            errno.ENOENT,
            f"cannot download to {str(target)!r}: its directory does not exist; create it "
            "first (Path(...).parent.mkdir(parents=True))",
            str(directory),
        )
    if not directory.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR,
            f"cannot download to {str(target)!r}: {str(directory)!r} is not a directory",
            str(directory),
        )
    if target.is_dir():
        raise IsADirectoryError(
            errno.EISDIR,
            f"cannot download to {str(target)!r}: it is a directory; name a file in it",
            str(target),
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(
            errno.EACCES,
            f"cannot download to {str(target)!r}: directory {str(directory)!r} is not writable",
            str(directory),
        )
