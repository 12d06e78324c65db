"""The batch job's durable state: one SQLite file (standard library), written ahead.

Every input gets a row before its InvokeEndpointAsync call (``submitting``, with the
inference id and, where the client chose them, the output location it will have), becomes
``accepted`` with the returned locations after the call, and ``done`` with its output line;
every inference id ever submitted for an input stays in ``attempts`` (a trigger keeps it).
A rerun reads the rows: ``accepted`` ones are waited for, ``submitting`` ones were perhaps
accepted (the response was lost) and are never submitted again unless asked, and ``done``
ones are written out again (or resubmitted, when asked to retry them). Calls run in a worker
thread: they touch only a local file.

Writes are committed in groups: every write made while a commit is under way goes into the
next one (one thread hop and one transaction for many rows). ``submitting`` and ``accepted``
return once their row is committed; ``done`` rows may wait for the next commit (a ``done``
row lost in a crash only means that result is read from S3 again on resume).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread

from ._errors import UserError

__all__ = ["BatchState", "Row", "discard_state"]

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
CREATE TABLE IF NOT EXISTS attempts (inference_id TEXT PRIMARY KEY, idx INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS attempt_added AFTER INSERT ON items
    WHEN NEW.inference_id IS NOT NULL
    BEGIN INSERT OR IGNORE INTO attempts VALUES (NEW.inference_id, NEW.idx); END;
CREATE TRIGGER IF NOT EXISTS attempt_again AFTER UPDATE OF inference_id ON items
    WHEN NEW.inference_id IS NOT NULL
    BEGIN INSERT OR IGNORE INTO attempts VALUES (NEW.inference_id, NEW.idx); END;
"""
_LIST_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
_TABLES = {"meta", "items", "attempts"}
_SIDE_FILES = ("-wal", "-shm", "-journal")


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


class _Write:
    """One statement waiting for its group commit."""

    __slots__ = ("error", "event", "params", "sql")

    def __init__(self, sql: str, params: tuple[Any, ...]) -> None:
        self.sql = sql
        self.params = params
        self.event = anyio.Event()
        self.error: BaseException | None = None


class BatchState:
    """The state file of one batch (``open`` creates it; ``close`` when done)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._queue: list[_Write] = []
        self._committing = False
        self._error: BaseException | None = None

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as error:
            raise UserError(f"cannot open the state file {self.path}: {error}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")  # reads the header: "not a database"
            tables = {name for (name,) in db.execute(_LIST_TABLES)}
            if tables - _TABLES:
                raise UserError(
                    f"{self.path} is not a batch state file (it has tables "
                    f"{', '.join(sorted(tables - _TABLES))}); pass another --state"
                )
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a process crash
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            db.close()
            if "full" in str(error):
                raise
            if "unable to open" in str(error):
                raise UserError(
                    f"cannot open the state file {self.path} ({error}): check that its "
                    "directory is writable"
                ) from None
            raise UserError(
                f"the state file {self.path} is corrupt or not a batch state file ({error}); "
                "move it away, or pass --force-new to start the batch over (every input is "
                "then submitted again)"
            ) from None
        except BaseException:
            db.close()
            raise
        return db

    async def open(self) -> None:
        """Open (or create) the file; :class:`UserError` if it is not a usable state file."""
        self._db = await anyio.to_thread.run_sync(self._connect)

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            db, self._db = self._db, None
            if db is not None:
                await anyio.to_thread.run_sync(db.close)

    async def _write(self, sql: str, params: tuple[Any, ...], *, wait: bool = True) -> None:
        """Queue a write; with ``wait``, return once it is committed (raising its error)."""
        write = _Write(sql, params)
        self._queue.append(write)
        if not self._committing:
            await self._commit_queued()
        elif wait:
            await write.event.wait()  # the commit under way takes it next
        if write.error is not None:
            raise write.error

    async def flush(self) -> None:
        """Commit every queued write; raise if a write that nobody waited for failed."""
        if self._queue or self._committing:
            await self._write("SELECT 1", ())  # committed after everything queued before it
        if self._error is not None:
            raise self._error

    async def _commit_queued(self) -> None:
        """Commit the queue in groups until it is empty (shielded: waiters depend on it)."""
        assert self._db is not None
        db = self._db
        self._committing = True
        try:
            with anyio.CancelScope(shield=True):
                while self._queue:
                    group, self._queue = self._queue, []
                    error: BaseException | None = None
                    try:
                        await anyio.to_thread.run_sync(self._commit, db, group)
                    except Exception as failure:
                        error = self._error = failure
                    for write in group:
                        write.error = error
                        write.event.set()
        finally:
            self._committing = False

    def _commit(self, db: sqlite3.Connection, group: list[_Write]) -> None:
        with self._lock:
            db.execute("BEGIN")
            try:
                for write in group:
                    db.execute(write.sql, write.params)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    async def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read (after the queued writes are committed)."""
        await self.flush()
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
        await self._write(
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
        await self._write(
            "INSERT INTO items (idx, state, inference_id, expected_output) "
            "VALUES (?, 'submitting', ?, ?) ON CONFLICT(idx) DO UPDATE SET "
            "state = 'submitting', inference_id = excluded.inference_id, "
            "expected_output = excluded.expected_output",
            (idx, inference_id, expected_output),
        )

    async def accepted(self, idx: int, output_path: str, failure_path: str | None) -> None:
        await self._write(
            "UPDATE items SET state = 'accepted', output_location = ?, failure_location = ? "
            "WHERE idx = ?",
            (output_path, failure_path, idx),
        )

    async def done(self, idx: int, line: str) -> None:
        """Recorded with the next group commit (waited for only when none is under way)."""
        await self._write(
            "INSERT INTO items (idx, state, line) VALUES (?, 'done', ?) "
            "ON CONFLICT(idx) DO UPDATE SET state = 'done', line = excluded.line",
            (idx, line),
            wait=False,
        )

    async def attempts(self) -> dict[int, list[str]]:
        """Every inference id submitted (or about to be) for each input, in submission order."""
        rows = await self._run("SELECT idx, inference_id FROM attempts ORDER BY rowid")
        found: dict[int, list[str]] = {}
        for idx, inference_id in rows:
            found.setdefault(idx, []).append(inference_id)
        return found

    async def lines(self) -> list[str]:
        rows = await self._run("SELECT line FROM items WHERE state = 'done' ORDER BY idx")
        return [row[0] for row in rows]


def discard_state(path: Path) -> None:
    """Delete a state file and SQLite's files beside it (``--force-new``)."""
    for name in ("", *_SIDE_FILES):
        path.with_name(path.name + name).unlink(missing_ok=True)
