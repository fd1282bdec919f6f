"""The async engine and session factory, one per process."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Connections a process keeps open (a web app; the worker asks for its own number),
# and how many more it may open for a moment.
POOL_SIZE = 15
POOL_OVERFLOW = 5
# How long a SQLite write waits for the database's one write lock before it fails with
# "database is locked". Below the 30 s limit of the activities that write (and of most
# requests), on purpose: a write cancelled while it waits, and cancelled again while it
# is cleaned up, is left holding the lock on a connection nobody uses until a garbage
# collection frees it, and every other writer stalls behind it (docs/BENCHMARKS.md §4).
# Failing first ends the transaction properly; the activity is retried.
SQLITE_BUSY_TIMEOUT = 10.0


def make_engine(
    url: str, *, connections: int = POOL_SIZE, sqlite_page_cache_kib: int | None = None
) -> AsyncEngine:
    """``connections``: how many this process uses at once, kept open in its pool.
    ``sqlite_page_cache_kib``: each SQLite connection's page cache, if not SQLite's
    default of 2,000 KiB (ignored on PostgreSQL, whose cache is the server's)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT},
            pool_size=connections,
            max_overflow=POOL_OVERFLOW,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets the worker write while the web app reads; foreign keys are off by
            # default in SQLite.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            if sqlite_page_cache_kib is not None:
                # Negative: a size in KiB, not a number of pages.
                cursor.execute(f"PRAGMA cache_size=-{int(sqlite_page_cache_kib)}")
            cursor.close()

        return engine
    # Kept open for the process's usual concurrency: a connection past ``pool_size`` is
    # closed when it is given back, so with SQLAlchemy's default of 5 every sixth
    # concurrent request opened a new connection (a PostgreSQL backend, its TCP and
    # SSL handshakes) and closed it again (docs/BENCHMARKS.md §2).
    return create_async_engine(
        url, pool_pre_ping=True, pool_size=connections, max_overflow=POOL_OVERFLOW
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def hold(db: AsyncSession, *rows: object) -> None:
    """Keeps ``rows`` in ``db``'s identity map for as long as ``db`` lives.

    The identity map holds its objects weakly: a row read beside the one a function
    returns (a joined patient, its practice) is dropped as soon as nothing refers to it,
    and a later ``db.get`` of it is another statement. A session is one request's or one
    activity's, so nothing is held longer than that."""
    db.info.setdefault("held", []).extend(row for row in rows if row is not None)


# What reaching the database raises while it restarts or is unreachable.
DATABASE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError)


def upsert_into(table: Table | type[Any], dialect_name: str) -> Any:
    """``INSERT`` into ``table`` with ``on_conflict_do_update`` / ``_do_nothing``:
    PostgreSQL and SQLite (3.35 and later) both decide a conflict in the one statement,
    each through its own dialect's construct."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return insert(table)


async def ping(engine: AsyncEngine) -> None:
    """Readiness: the database answers a query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def commit_or_refusal(db: AsyncSession) -> IntegrityError | None:
    """Commits, or rolls back and answers what refused the rows: an activity retried, or
    run by two workers at once, finds a unique key taken by the attempt that got there
    first, and the caller tells that apart from a fault."""
    try:
        await db.commit()
    except IntegrityError as refused:
        await db.rollback()
        return refused
    return None


P = ParamSpec("P")
T = TypeVar("T")


def finishes_when_cancelled(
    work: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Lets ``work`` (a coroutine function that is one transaction) end its transaction
    when its caller is cancelled, and only then passes the cancellation on.

    For transactions whose caller is cancelled in the normal run of things: the worker's
    local activities (the SDK cancels one at its time limit and again when its workflow
    leaves the cache; a new local activity that writes takes this too) and the audit
    linker (when its process stops). Cancelled in the middle of a statement, twice
    (SQLAlchemy's clean-up is cancelled too), the connection is thrown away with its
    statement unfinished, and on SQLite it keeps the database's one write lock until a
    garbage collection frees it: every writer after it stalled (the open-emails
    benchmark, docs/BENCHMARKS.md §4). Finished, the transaction commits or rolls back
    and gives its connection back clean; an activity is retried.
    The wait is bounded by the database's own limits (SQLite's lock wait, the pool's
    checkout timeout, the driver's connect timeout), not by the caller.
    """

    @functools.wraps(work)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        task = asyncio.ensure_future(work(*args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            while not task.done():
                try:
                    await asyncio.shield(task)
                except asyncio.CancelledError:
                    continue  # cancelled again: still wait for the transaction's end
                except Exception:
                    break  # it failed on its own; the cancellation is what is reported
            raise

    return run
