"""Blockbuster for the async tests: any blocking call on a running event loop fails the test.

That covers every loop of the process, not only the test's: the emulator's and the proxies'
loops run in their own threads, and a blocking call there (or one that the client's code
catches and retries) is recorded and fails the test too.

The allow-list names only third-party internals the project cannot change, each with its
reason. The client, the notifications listener and the tests' own async code get no entry.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from blockbuster import BlockingError, blockbuster_ctx

ANY = "*"

ALLOWED: list[tuple[str, str, str, str]] = [
    (
        ANY,
        "aiobotocore/session.py",
        "_create_client",
        "botocore reads the config file and its JSON service models and endpoint rules "
        "synchronously while a client is created (once per client, when a predictor opens)",
    ),
    (
        ANY,
        "tqdm/version.py",
        "<module>",
        "importing tqdm (once, when the first progress bar is made) reads its installed "
        "metadata from disk to learn its version",
    ),
    (
        ANY,
        "logging/__init__.py",
        "emit flush",
        "the standard library's logging handlers write synchronously; the library logs a "
        "rare warning (a malformed notification, a failed queue check) and cannot choose the "
        "application's handlers (a QueueHandler makes them non-blocking)",
    ),
]
"""(blocking function or ANY, file suffix, function names in that file, reason)."""

BLOCKS_ON_PURPOSE = {
    "tests/local/test_local_lifecycle.py::test_works_while_the_callers_loop_is_blocked": (
        "blocks its own event loop with sync boto3 calls to prove the emulator serves from "
        "its own loop"
    ),
}
"""Tests that block their event loop deliberately (node id -> reason): run without it."""


@contextmanager
def no_blocking() -> Iterator[list[str]]:
    """Activate blockbuster with :data:`ALLOWED`; yield the blocking calls seen, in any thread."""
    seen: list[str] = []
    original = BlockingError.__init__

    def record(self: BlockingError, func: str) -> None:
        original(self, func)
        stack = "".join(traceback.format_stack(limit=40)[:-2])
        seen.append(f"{func} on the loop of thread {threading.current_thread().name!r}:\n{stack}")

    BlockingError.__init__ = record  # type: ignore[method-assign]
    try:
        with blockbuster_ctx() as buster:
            for function, filename, names, _reason in ALLOWED:
                targets = (
                    buster.functions.values() if function == ANY else [buster.functions[function]]
                )
                for target in targets:
                    target.can_block_in(filename, set(names.split()))
            yield seen
    finally:
        BlockingError.__init__ = original  # type: ignore[method-assign]
