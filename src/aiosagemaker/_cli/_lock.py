"""One batch process per state file: an exclusive ``flock`` on ``STATE.lock``, held for the run.

The lock file holds the holder's pid, for the message of a second process. The lock goes
with the process (a ``kill -9`` releases it); the file stays, harmlessly. Without ``fcntl``
(Windows) there is no lock.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from ._errors import UserError

__all__ = ["lock_path", "state_lock"]


def lock_path(state: Path) -> Path:
    """The lock file of a state file."""
    return state.with_name(state.name + ".lock")


@contextlib.contextmanager
def state_lock(state: Path) -> Iterator[None]:
    """Hold the state file's lock, or raise :class:`UserError` naming the holder's pid."""
    if sys.platform == "win32":  # pragma: no cover - no flock
        yield
        return
    import fcntl

    path = lock_path(state)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise UserError(f"cannot create the lock file {path}: {error.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise UserError(
                f"another aiosagemaker batch (pid {holder}) is running on the state file "
                f"{state}; wait for it to finish, or pass another --state"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
