"""Sliding-window rate limits kept in the database, so every web replica shares them.

Used on staff log-in and on the portal's passcode endpoints, per address and per client,
to slow down guessing. The workflow's own limits (5 passcodes an hour, 5 tries each)
still hold; these stop one client spreading guesses over many messages or accounts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db.models import RateLimitHit


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
    now = datetime.now(UTC)
    for limit, subject in checks:
        if subject is not None:
            db.add(RateLimitHit(bucket=limit.bucket(subject), at=now))
    await db.execute(delete(RateLimitHit).where(RateLimitHit.at < now - KEEP_HITS))
    await db.commit()


async def allow(db: AsyncSession, checks: Checks) -> bool:
    """Counts one attempt against each limit; False if any was already used up.

    A refused attempt is counted too, so hammering a limit keeps it closed.
    """
    refused = await exceeded(db, checks)
    await record(db, checks)
    return not refused
