"""A flood of attempts cannot hang the web app on its own database pool: counting a
rate-limited attempt (Verify, passcode, log-in) never holds one pooled connection while
it waits for a second."""

from __future__ import annotations

import random

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from infra import rate_limits
from infra.db.engine import make_sessionmaker
from infra.db.models import Practice, RateLimitCount
from infra.rate_limits import VERIFY_PER_CLIENT, count


async def test_counting_an_attempt_never_waits_on_the_sessions_own_connection(
    database_url: str,
) -> None:
    """A request's session holds a connection once it has read; counting its attempt on
    a second one made each request hold one and wait for another, so as many concurrent
    Verify requests as the pool has connections hung until the pool's timeout and
    answered 500 (seen at 16 at once with the pool's 15). Here: a pool of one."""
    engine = create_async_engine(
        database_url,
        pool_size=1,
        max_overflow=0,
        pool_timeout=3,
        poolclass=AsyncAdaptedQueuePool,
    )
    try:
        async with make_sessionmaker(engine)() as db:
            checks: rate_limits.Checks = [
                (VERIFY_PER_CLIENT, f"198.51.100.{random.randint(1, 254)}")
            ]
            await db.scalar(select(func.count()).select_from(Practice))
            assert db.in_transaction()  # the session now holds the connection
            assert (await count(db, checks)).allowed
            assert (await db.scalar(select(func.sum(RateLimitCount.count))) or 0) >= 1
    finally:
        await engine.dispose()
