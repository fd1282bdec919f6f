"""Rate limits kept in the database, so every web replica shares them (R17).

Used on staff log-in and on the portal's passcode endpoints, per address and per client,
to slow down guessing. The workflow's own limits (5 passcodes an hour, 5 tries each)
still hold; these stop one client spreading guesses over many messages or accounts.

An attempt is counted and decided in one statement: an upsert that adds one to the
count of its limit's current window and returns the new count. Concurrent attempts
queue on that row (PostgreSQL's row lock, SQLite's one write lock), so each sees its own
number: a burst sent at once gets no more attempts than the same requests sent one by
one, and the route refuses the rest before it checks any password or passcode.

Windows are fixed (aligned to the epoch) and the previous window's count is weighted by
how much of it still lies inside a sliding window ending now: with fixed windows alone a
client could spend a whole allowance at the end of one window and another at the start
of the next. The previous window is finished, so reading it does not race anything; the
estimate errs only when attempts in it were bunched, by at most one window's count.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from infra.db.engine import upsert_into
from infra.db.models import RateLimitCount

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    name: str
    attempts: int
    window: timedelta

    def bucket(self, subject: str) -> str:
        # Hashed: the table must not become a list of addresses and IPs.
        return hashlib.sha256(f"{self.name}:{subject}".encode()).hexdigest()

    def window_start(self, now: datetime) -> datetime:
        seconds = int(self.window.total_seconds())
        return datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, UTC)


STAFF_LOGIN_PER_CLIENT = Limit("login-client", 20, timedelta(minutes=15))
# Wrong passwords for one account slow every attempt at it (office_auth's growing delay,
# from this many on) but never refuse it: anyone could lock the real owner out otherwise.
STAFF_LOGIN_PER_ACCOUNT = Limit("login-account", 3, timedelta(minutes=15))
# The client sending wrong passwords for one account is the one refused.
STAFF_LOGIN_PER_ACCOUNT_CLIENT = Limit("login-account-client", 5, timedelta(minutes=15))
PASSCODE_PER_CLIENT = Limit("passcode-client", 20, timedelta(hours=1))
# Passcodes mailed to one mailbox of one practice, whichever of the family's messages
# asked: the mailbox is what a flood would hit. Each message's own limit (five an hour,
# in the workflow) still holds, and wrong codes burn only that message's passcode.
PASSCODE_PER_ADDRESS = Limit("passcode-address", 10, timedelta(hours=1))
VERIFY_PER_CLIENT = Limit("verify-client", 30, timedelta(minutes=15))

# Longer than any limit's window and the one before it.
KEEP_COUNTS = timedelta(days=1)


Checks = Sequence[tuple[Limit, str | None]]


@dataclass(frozen=True)
class Counted:
    """One attempt counted against one limit."""

    limit: Limit
    bucket: str
    window_start: datetime
    # The attempts in the sliding window ending now, this one included (estimated: see
    # the module's docstring).
    attempts: float

    @property
    def over(self) -> bool:
        return self.attempts > self.limit.attempts


@dataclass(frozen=True)
class Attempt:
    """One attempt counted against each of its limits: allowed if none is over."""

    counted: tuple[Counted, ...]

    @property
    def allowed(self) -> bool:
        return not any(c.over for c in self.counted)

    def retry_after(self) -> int:
        """Seconds to tell a refused client to wait: the window of the limit it is over,
        the wait the refusal's words name."""
        return max((int(c.limit.window.total_seconds()) for c in self.counted if c.over), default=0)


async def count(db: AsyncSession, checks: Checks, *, now: datetime | None = None) -> Attempt:
    """Counts one attempt against each limit (a ``None`` subject is skipped) and answers
    whether it is allowed, in a transaction of its own.

    Committed before the caller checks anything, so no later failure (the request's own
    commit, a crash) can undo it: a guess, once made, stays counted. A refused attempt
    is counted too, so hammering a limit keeps it closed.

    A session that has only read is committed first: that hands its connection back to
    the pool, so a request does not hold one connection while it waits for a second,
    and as many attempts at once as the pool has connections cannot all wait on each
    other until the pool times out.

    ``now``: the time to count the attempt at, for tests of the windows.
    """
    if not (db.new or db.dirty or db.deleted):
        await db.commit()
    now = now or datetime.now(UTC)
    # One order for every transaction, so two that count the same rows never wait on
    # each other's in turn (a deadlock on PostgreSQL).
    chosen = sorted(
        ((limit, limit.bucket(subject)) for limit, subject in checks if subject is not None),
        key=lambda pair: pair[1],
    )
    engine = _engine_of(db)
    counted: list[Counted] = []
    if chosen:
        async with engine.begin() as connection:
            for limit, bucket in chosen:
                counted.append(await _count_one(connection, limit, bucket, now))
    if next(_counted) % PRUNE_EVERY == 0:
        await _prune_quietly(engine, now)
    return Attempt(tuple(counted))


async def _count_one(
    connection: AsyncConnection, limit: Limit, bucket: str, now: datetime
) -> Counted:
    start = limit.window_start(now)
    statement = upsert_into(RateLimitCount, connection.dialect.name).values(
        bucket=bucket, window_start=start, count=1
    )
    # The previous window's count is read by the same statement (a subquery in its
    # RETURNING, on another row: that window is finished), one round trip for both. The
    # write comes first either way: on SQLite a transaction that read before it writes
    # cannot wait for the write lock, and fails at once when another writer holds it.
    earlier = aliased(RateLimitCount)
    previous_count = (
        select(earlier.count)
        .where(earlier.bucket == bucket, earlier.window_start == start - limit.window)
        .scalar_subquery()
    )
    counts = await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[RateLimitCount.bucket, RateLimitCount.window_start],
            set_={"count": RateLimitCount.count + 1},
        ).returning(RateLimitCount.count, previous_count)
    )
    current, previous = counts.one()
    still_inside = 1 - (now - start) / limit.window
    return Counted(limit, bucket, start, (current or 0) + (previous or 0) * still_inside)


async def uncount(db: AsyncSession, attempt: Attempt) -> None:
    """Takes back what ``count`` counted, for an attempt that turned out not to be one
    the limits are about (a right password, a passcode the workflow did not send).

    A failure here is logged, not raised: it leaves the attempt counted, the safe side.
    """
    if not attempt.counted:
        return
    if not (db.new or db.dirty or db.deleted):
        await db.commit()
    try:
        async with _engine_of(db).begin() as connection:
            for counted in sorted(attempt.counted, key=lambda c: c.bucket):
                await connection.execute(
                    update(RateLimitCount)
                    .where(
                        RateLimitCount.bucket == counted.bucket,
                        RateLimitCount.window_start == counted.window_start,
                        RateLimitCount.count > 0,
                    )
                    .values(count=RateLimitCount.count - 1)
                )
    except SQLAlchemyError:
        logger.warning("rate limits: taking back an attempt failed", exc_info=True)


# Windows older than KEEP_COUNTS are deleted a batch at a time on every PRUNE_EVERY-th
# counted attempt (per process), found through the index on ``window_start``: no attempt
# scans the table, and one batch is far more than the windows started in between (at
# most one a limit an attempt), so the table holds about a day of windows.
PRUNE_EVERY = 20
PRUNE_BATCH = 1000
_counted = itertools.count(1)


async def prune(engine: AsyncEngine, now: datetime | None = None) -> int:
    """Deletes at most PRUNE_BATCH of the oldest expired windows; returns how many."""
    cutoff = (now or datetime.now(UTC)) - KEEP_COUNTS
    oldest = (
        select(RateLimitCount.bucket, RateLimitCount.window_start)
        .where(RateLimitCount.window_start < cutoff)
        .order_by(RateLimitCount.window_start)
        .limit(PRUNE_BATCH)
        # Two replicas pruning at once take different rows instead of waiting on (or
        # deadlocking over) the same ones. SQLite has one writer and no such clause.
        .with_for_update(skip_locked=True)
    )
    key = tuple_(RateLimitCount.bucket, RateLimitCount.window_start)
    async with engine.begin() as connection:
        result = await connection.execute(delete(RateLimitCount).where(key.in_(oldest)))
    return result.rowcount


async def _prune_quietly(engine: AsyncEngine, now: datetime) -> None:
    # Housekeeping: the attempt is already counted, and the next prune catches up.
    try:
        await prune(engine, now)
    except SQLAlchemyError:
        logger.warning("rate limits: pruning old counts failed", exc_info=True)


def _engine_of(db: AsyncSession) -> AsyncEngine:
    bind = db.bind
    if isinstance(bind, AsyncConnection):
        return bind.engine
    if bind is None:
        raise RuntimeError("rate limits need a session bound to an engine")
    return bind
