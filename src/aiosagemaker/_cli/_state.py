"""The batch job's durable state: one SQLite file (standard library), written ahead.

Every input gets a row before its InvokeEndpointAsync call (``submitting``, with the
inference id and, where the client chose them, the output location it will have), becomes
``accepted`` with the returned locations after the call, and ``done`` with its output line.
A rerun reads the rows: ``accepted`` ones are waited for, ``submitting`` ones were perhaps
accepted (the response was lost) and are never submitted again unless asked, and ``done``
ones are written out again. Calls run in a worker thread: they touch only a local file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread

__all__ = ["BatchState", "Row"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    idx INTEGER PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('submitting', 'accepted', 'done')),
    inference_id TEXT,
    expected_output TEXT,
    output_location TEXT,
    failure_location TEXT,
    line TEXT
);
"""


@dataclass(frozen=True, slots=True)
class Row:
    """One input's record."""

    idx: int
    state: str
    inference_id: str | None
    expected_output: str | None
    output_location: str | None
    failure_location: str | None
    line: str | None


class BatchState:
    """The state file of one batch (``open`` creates it; ``close`` when done)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a process crash
        db.executescript(_SCHEMA)
        return db

    async def open(self) -> None:
        self._db = await anyio.to_thread.run_sync(self._connect)

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await anyio.to_thread.run_sync(db.close)

    async def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        assert self._db is not None
        db = self._db

        def run() -> list[tuple[Any, ...]]:
            with self._lock:
                return db.execute(sql, params).fetchall()

        return await anyio.to_thread.run_sync(run)

    async def meta(self) -> dict[str, Any]:
        rows = await self._run("SELECT key, value FROM meta")
        return {key: json.loads(value) for key, value in rows}

    async def set_meta(self, key: str, value: Any) -> None:
        await self._run(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    async def rows(self) -> dict[int, Row]:
        rows = await self._run(
            "SELECT idx, state, inference_id, expected_output, output_location, "
            "failure_location, line FROM items"
        )
        return {row[0]: Row(*row) for row in rows}

    async def submitting(self, idx: int, inference_id: str, expected_output: str | None) -> None:
        """Written (and committed) before the InvokeEndpointAsync call."""
        await self._run(
            "INSERT INTO items (idx, state, inference_id, expected_output) "
            "VALUES (?, 'submitting', ?, ?) ON CONFLICT(idx) DO UPDATE SET "
            "state = 'submitting', inference_id = excluded.inference_id, "
            "expected_output = excluded.expected_output",
            (idx, inference_id, expected_output),
        )

    async def accepted(self, idx: int, output: str, failure: str | None) -> None:
        await self._run(
            "UPDATE items SET state = 'accepted', output_location = ?, failure_location = ? "
            "WHERE idx = ?",
            (output, failure, idx),
        )

    async def done(self, idx: int, line: str) -> None:
        await self._run(
            "INSERT INTO items (idx, state, line) VALUES (?, 'done', ?) "
            "ON CONFLICT(idx) DO UPDATE SET state = 'done', line = excluded.line",
            (idx, line),
        )

    async def lines(self) -> list[str]:
        rows = await self._run("SELECT line FROM items WHERE state = 'done' ORDER BY idx")
        return [row[0] for row in rows]
