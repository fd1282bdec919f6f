"""A write cancelled while it waits for SQLite's write lock leaves no lock behind.

Found by the open-emails benchmark (docs/BENCHMARKS.md §4): a write cancelled while it
waited for SQLite's lock, and cancelled again while it was cleaned up, kept the lock on
a connection nobody used, and every writer after it stalled. The worker's local
activities are cancelled so (at their time limit, and when their workflow leaves the
cache). Two guards: SQLite's wait is below that limit, so a write waiting that long
fails first; and a local activity's transaction runs to its end before the cancellation
is passed on (``finishes_when_cancelled``).
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from temporalio.testing import ActivityEnvironment

import infra.db.engine
from activities.read_model import ReadModelActivities
from domain.secure_email import SecureEmailStatus
from infra.db.engine import SQLITE_BUSY_TIMEOUT, make_engine, make_sessionmaker
from tests.fixtures.rows import a_secure_email
from tests.fixtures.temporal import status_change_now
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


async def secure_email_sending(url: str) -> str:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        secure_email = await a_secure_email(db, status="sending")
        await db.commit()
    await engine.dispose()
    return secure_email.id


async def test_a_status_cancelled_while_it_waits_is_still_recorded_and_frees_the_lock(
    migrated_sqlite: Path, tmp_path: Path
) -> None:
    path = tmp_path / "app.db"
    shutil.copyfile(migrated_sqlite, path)
    url = f"sqlite+aiosqlite:///{path}"
    secure_email_id = await secure_email_sending(url)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a busy writer holds the lock
    engine = make_engine(url)
    activities = ReadModelActivities(make_sessionmaker(engine))
    delivered = status_change_now(secure_email_id, SecureEmailStatus.SENT, sequence=1)
    recording = asyncio.create_task(ActivityEnvironment().run(activities.record_status, delivered))
    await asyncio.sleep(LIMIT / 2)
    # Its time limit passes while it waits, and its workflow leaves the cache.
    for _ in range(2):
        recording.cancel()
        await asyncio.sleep(0.05)
    holder.execute("COMMIT")
    with pytest.raises(asyncio.CancelledError):
        await recording

    # Its transaction ended: the status is recorded and the next writer gets the lock.
    after = sqlite3.connect(path, timeout=0.5)
    after.execute("UPDATE secure_emails SET status = status WHERE id = ?", (secure_email_id,))
    after.commit()
    status = after.execute("SELECT status FROM secure_emails WHERE id = ?", (secure_email_id,))
    assert status.fetchone() == ("sent",)
    after.close()
    holder.close()
    await engine.dispose()
