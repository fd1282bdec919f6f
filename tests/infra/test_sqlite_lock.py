"""A SQLite write that waits for the write lock gives up before whoever waits on it.

Found by the 10,000-open benchmark (docs/BENCHMARKS.md §4): a write cancelled while it
waited for SQLite's lock, and cancelled again while it was cleaned up, kept the lock on
a connection nobody used, and every writer after it stalled. A local activity is
cancelled when its time limit passes; SQLite's busy timeout is now below that limit, so
the waiting write fails first ("database is locked"), its transaction ends and the
activity is retried.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import infra.db.engine
from infra.db.engine import SQLITE_BUSY_TIMEOUT, make_engine
from workflows.secure_email import QUICK_TIMEOUT

# The test's stand-in for an activity's time limit, and SQLite's wait below it.
LIMIT = 1.0


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A SQLite file whose write lock another connection holds, as a busy writer would."""
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE secure_emails (id INTEGER PRIMARY KEY, status TEXT)")
    holder.execute("INSERT INTO secure_emails VALUES (1, 'sending')")
    holder.execute("BEGIN IMMEDIATE")
    yield path, holder
    holder.close()


def test_the_wait_is_below_every_limit_of_an_activity_that_writes() -> None:
    assert SQLITE_BUSY_TIMEOUT < QUICK_TIMEOUT.total_seconds()


async def test_a_write_cancelled_while_it_waits_leaves_no_lock_behind(
    database: tuple[Path, sqlite3.Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, holder = database
    monkeypatch.setattr(infra.db.engine, "SQLITE_BUSY_TIMEOUT", LIMIT / 4)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")

    async def record_status() -> str | None:
        async with engine.begin() as connection:
            changed = await connection.execute(
                text("UPDATE secure_emails SET status = 'sent' WHERE id = 1 RETURNING status")
            )
            return changed.scalar()

    write = asyncio.create_task(record_status())
    await asyncio.sleep(LIMIT)
    # The time limit passes: cancelled, and again while it cleans up, as the worker does.
    for _ in range(2):
        write.cancel()
        await asyncio.sleep(0.05)
    with pytest.raises(OperationalError, match="database is locked"):
        await write
    holder.execute("COMMIT")

    # The next writer (the activity's retry) gets the lock at once and its change lands.
    retry = sqlite3.connect(path, timeout=0.5)
    retry.execute("UPDATE secure_emails SET status = 'sent' WHERE id = 1")
    retry.commit()
    assert retry.execute("SELECT status FROM secure_emails").fetchone() == ("sent",)
    retry.close()
    await engine.dispose()
