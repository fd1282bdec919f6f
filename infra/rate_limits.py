"""Sliding-window rate limits kept in the database, so every web replica shares them.

Used on staff log-in and on the portal's passcode endpoints, per address and per client,
to slow down guessing. The workflow's own limits (5 passcodes an hour, 5 tries each)
still hold; these stop one client spreading guesses over many messages or accounts.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from infra.db.models import RateLimitHit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    name: str
    attempts: int
    window: timedelta

    def bucket(self, subject: str) -> str:
        # Hashed: the table must not become a list of addresses and IPs.
        return hashlib.sha256(f"{self.name}:{subject}".encode()).hexdigest()


STAFF_LOGIN_PER_CLIENT = Limit("login-client", 20, timedelta(minutes=15))
# Wrong passwords for one account slow every attempt at it (office_auth's growing delay,
# from this many on) but never refuse it: anyone could lock the real owner out otherwise.
STAFF_LOGIN_PER_ACCOUNT = Limit("login-account", 3, timedelta(minutes=15))
# The client sending wrong passwords for one account is the one refused.
STAFF_LOGIN_PER_ACCOUNT_CLIENT = Limit("login-account-client", 5, timedelta(minutes=15))
PASSCODE_PER_CLIENT = Limit("passcode-client", 20, timedelta(hours=1))
PASSCODE_PER_PATIENT = Limit("passcode-patient", 10, timedelta(hours=1))
VERIFY_PER_CLIENT = Limit("verify-client", 30, timedelta(minutes=15))

KEEP_HITS = timedelta(days=1)


Checks = list[tuple[Limit, str | None]]


async def exceeded(db: AsyncSession, checks: Checks) -> bool:
    """True if any limit has no attempts left."""
    now = datetime.now(UTC)
    for limit, subject in checks:
        if subject is None:
            continue
        used = await db.scalar(
            select(func.count())
            .select_from(RateLimitHit)
            .where(
                RateLimitHit.bucket == limit.bucket(subject),
                RateLimitHit.at > now - limit.window,
            )
        )
        if (used or 0) >= limit.attempts:
            return True
    return False


async def record(db: AsyncSession, checks: Checks) -> None:
    """Counts one attempt against each limit, in a transaction of its own.

    Committed before anything else the request writes, so no later failure (the
    request's own commit, a crash) can undo it: a guess, once made, stays counted. Then
    commits the caller's session as before, so what it added for the attempt (a failed
    log-in's audit event) is kept with it.

    A session that has only read is committed first: that hands its connection back
    to the pool, so a request does not hold one connection while it waits for a
    second, and as many attempts at once as the pool has connections cannot all wait
    on each other until the pool times out (the routes count before they write).
    """
    if not (db.new or db.dirty or db.deleted):
        await db.commit()
    now = datetime.now(UTC)
    hits = [
        {"bucket": limit.bucket(subject), "at": now}
        for limit, subject in checks
        if subject is not None
    ]
    engine = _engine_of(db)
    if hits:
        async with engine.begin() as connection:
            await connection.execute(insert(RateLimitHit), hits)
    if next(_counted) % PRUNE_EVERY == 0:
        await _prune_quietly(engine, now)
    await db.commit()


# Hits older than KEEP_HITS are deleted a batch at a time on every PRUNE_EVERY-th counted
# attempt (per process), found through the index on ``at``: no attempt scans the table,
# and one batch is far more than the hits counted in between, so the table holds about a
# day of attempts.
PRUNE_EVERY = 20
PRUNE_BATCH = 1000
_counted = itertools.count(1)


async def prune(engine: AsyncEngine, now: datetime | None = None) -> int:
    """Deletes at most PRUNE_BATCH of the oldest expired hits; returns how many."""
    cutoff = (now or datetime.now(UTC)) - KEEP_HITS
    oldest = (
        select(RateLimitHit.id)
        .where(RateLimitHit.at < cutoff)
        .order_by(RateLimitHit.at)
        .limit(PRUNE_BATCH)
        # Two replicas pruning at once take different rows instead of waiting on (or
        # deadlocking over) the same ones. SQLite has one writer and no such clause.
        .with_for_update(skip_locked=True)
    )
    async with engine.begin() as connection:
        result = await connection.execute(delete(RateLimitHit).where(RateLimitHit.id.in_(oldest)))
    return result.rowcount


async def _prune_quietly(engine: AsyncEngine, now: datetime) -> None:
    # Housekeeping: the attempt is already counted, and the next prune catches up.
    try:
        await prune(engine, now)
    except SQLAlchemyError:
        logger.warning("rate limits: pruning old attempts failed", exc_info=True)


def _engine_of(db: AsyncSession) -> AsyncEngine:
    bind = db.bind
    if isinstance(bind, AsyncConnection):
        return bind.engine
    if bind is None:
        raise RuntimeError("rate limits need a session bound to an engine")
    return bind


async def allow(db: AsyncSession, checks: Checks) -> bool:
    """Counts one attempt against each limit; False if any was already used up.

    A refused attempt is counted too, so hammering a limit keeps it closed.
    """
    refused = await exceeded(db, checks)
    await record(db, checks)
    return not refused
