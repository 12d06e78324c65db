"""Failures the user can fix, as one line each (the command exits 2 with it)."""

from __future__ import annotations

import errno
import sqlite3

from botocore.exceptions import NoCredentialsError, NoRegionError

__all__ = ["REGION_HINT", "UserError", "leaves", "user_message"]

REGION_HINT = "set AWS_DEFAULT_REGION (or AWS_REGION), or pass --region"
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class UserError(Exception):
    """A failure the user can fix; its message says what was wrong and what to do."""


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups; ``[error]`` for any other."""
    inner = getattr(error, "exceptions", None)
    if not isinstance(inner, tuple):
        return [error]
    return [leaf for child in inner for leaf in leaves(child)]


def user_message(error: BaseException) -> str | None:
    """One line for a failure the user can fix, or None for anything else."""
    if isinstance(error, UserError):
        return str(error)
    if isinstance(error, NoRegionError):
        return f"no AWS region is configured: {REGION_HINT}"
    if isinstance(error, NoCredentialsError):
        return (
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
            "AWS_PROFILE, or configure the credentials file"
        )
    if isinstance(error, OSError) and error.errno in _FULL:
        where = f" writing {error.filename}" if error.filename else ""
        return (
            f"no space left on the device{where} ({error.strerror}); free some space, then "
            "run the same command again (it resumes)"
        )
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"cannot write {error.filename}: {error.strerror}"
    if isinstance(error, sqlite3.OperationalError) and "full" in str(error):
        return (
            f"no space left for the state file ({error}); free some space, then run the same "
            "command again (it resumes)"
        )
    return None
