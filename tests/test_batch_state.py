"""The batch CLI's state file: group commits, what a reader sees, and failures that surface."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from aiosagemaker._cli._state import BatchState

pytestmark = pytest.mark.anyio


async def test_concurrent_writes_are_all_committed_and_read_back(tmp_path: Path) -> None:
    state = BatchState(tmp_path / "state.db")
    await state.open()

    async def one(idx: int) -> None:
        await state.submitting(idx, f"id-{idx}", None)
        await state.accepted(idx, f"s3://b/out/{idx}", None)
        await state.done(idx, f'{{"index": {idx}}}')

    async with anyio.create_task_group() as tasks:
        for idx in range(300):
            tasks.start_soon(one, idx)
    assert await state.lines() == [f'{{"index": {idx}}}' for idx in range(300)]
    await state.close()
    reopened = BatchState(tmp_path / "state.db")
    await reopened.open()
    rows = await reopened.rows()
    await reopened.close()
    assert len(rows) == 300 and {row.state for row in rows.values()} == {"done"}


async def test_a_failed_commit_reaches_the_writers_and_the_reader(tmp_path: Path) -> None:
    state = BatchState(tmp_path / "state.db")
    await state.open()
    await state.submitting(0, "id-0", None)
    bad = "INSERT INTO nowhere VALUES (?)"
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        await state._write(bad, (1,))
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        await state.lines()  # a failed commit is never forgotten: no output from a gap
    with pytest.raises(sqlite3.OperationalError):
        await state.close()
    assert state._db is None  # closed all the same
