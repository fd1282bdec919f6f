"""Rate limits on staff log-in and the portal's passcode endpoints, and their table."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.passcodes import MAX_PASSCODES_PER_HOUR
from infra import rate_limits
from infra.db.engine import make_sessionmaker
from infra.db.models import RateLimitCount
from infra.rate_limits import (
    PASSCODE_PER_ADDRESS,
    PASSCODE_PER_CLIENT,
    STAFF_LOGIN_PER_CLIENT,
    VERIFY_PER_CLIENT,
    Limit,
    count,
    uncount,
)
from tests.conftest import STAFF_PASSWORD, Browser, Office
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    return Browser(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://portal.test",
    )


# Guesses at one account from many clients slow it but never lock it: see
# tests/security/test_lockout.py.


async def test_log_in_limited_per_client(app: FastAPI, office: Office) -> None:
    async with client_at(app, "10.8.0.1") as guesser:
        for attempt in range(20):
            response = await guesser.post(
                "/login", data={"email": f"nobody{attempt}@example.com", "password": "x"}
            )
            assert response.status_code == 401
        refused = await guesser.post(
            "/login", data={"email": office.email, "password": STAFF_PASSWORD}
        )
        assert refused.status_code == 429
    async with client_at(app, "10.8.0.2") as other:
        allowed = await other.post(
            "/login", data={"email": office.email, "password": STAFF_PASSWORD}
        )
        assert allowed.status_code == 303


async def test_right_passwords_are_not_counted(app: FastAPI, office: Office) -> None:
    """A front desk whose staff log in all day from one address is never refused."""
    async with client_at(app, f"10.9.{random.randrange(256)}.1") as desk:
        for _ in range(STAFF_LOGIN_PER_CLIENT.attempts + 2):
            login = await desk.post(
                "/login", data={"email": office.email, "password": STAFF_PASSWORD}
            )
            assert login.status_code == 303


async def test_verify_limited_per_client(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", "ada@example.com")
    await stack.office.api.post(
        "/api/v1/secure-emails", data={"patient_id": patient_id, "subject": "S", "body": "B"}
    )
    link = await stack.notice_link("ada@example.com")
    async with client_at(stack.app, "10.7.0.1") as guesser:
        for _ in range(30):
            # Malformed codes never reach the workflow, but still count.
            await guesser.post(f"{link}/verify", data={"passcode": "1"})
        refused = await guesser.post(f"{link}/verify", data={"passcode": "12345678"})
        assert refused.status_code == 429
        assert "Too many attempts" in refused.text


# Refused passcode requests --------------------------------------------------------------


async def test_refused_passcode_requests_do_not_count_against_the_patient(stack: Stack) -> None:
    email = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    patient_id = await stack.add_patient("Ada", email)
    links: list[str] = []
    for _ in range(3):
        await stack.office.api.post(
            "/api/v1/secure-emails",
            data={"patient_id": patient_id, "subject": "S", "body": "B"},
        )
        links.append(await newest_link(stack, email, known=links))
    first, second, third = links

    # An attacker with the first link asks again and again from one device: the workflow
    # sends its five passcodes an hour, the rest are refused, then the device is.
    async with client_at(stack.app, f"10.6.{random.randrange(256)}.1") as attacker:
        answers = [
            (await attacker.post(f"{first}/passcode")).status_code
            for _ in range(PASSCODE_PER_CLIENT.attempts + 5)
        ]
    assert answers.count(303) == MAX_PASSCODES_PER_HOUR
    assert answers[-1] == 429

    # Only the five passcodes sent count against Ada: her own requests still work...
    async with client_at(stack.app, f"10.6.{random.randrange(256)}.2") as ada:
        allowance = PASSCODE_PER_ADDRESS.attempts - MAX_PASSCODES_PER_HOUR
        for _ in range(allowance):
            assert (await ada.post(f"{second}/passcode")).status_code == 303
        # ...until passcodes actually sent reach her hourly allowance.
        refused = await ada.post(f"{third}/passcode")
    assert refused.status_code == 429
    assert "Too many attempts" in refused.text


async def newest_link(stack: Stack, email: str, known: list[str]) -> str:
    """The link of the notice just sent (notices arrive one by one)."""

    async def new_link() -> str | None:
        link = await stack.notice_link(email)
        return link if link not in known else None

    return await eventually(new_link, timeout=10, what="a new notice")


# The table of counts --------------------------------------------------------------------


async def count_in(engine: AsyncEngine, bucket: str) -> int:
    async with make_sessionmaker(engine)() as db:
        counted = await db.scalar(
            select(func.sum(RateLimitCount.count)).where(RateLimitCount.bucket == bucket)
        )
    return counted or 0


def a_limit(attempts: int, window: timedelta = timedelta(minutes=15)) -> Limit:
    """A limit of its own, so no other test's attempts are counted in it."""
    return Limit(f"test-{uuid.uuid4().hex}", attempts, window)


async def test_a_counted_attempt_survives_the_request_failing(engine: AsyncEngine) -> None:
    guesser = f"10.5.{random.randrange(256)}.{random.randrange(1, 255)}"
    async with make_sessionmaker(engine)() as db:
        # Something the request wrote that its commit will refuse.
        db.add(RateLimitCount(bucket=uuid.uuid4().hex, window_start=datetime.now(UTC), count=None))
        assert (await count(db, [(STAFF_LOGIN_PER_CLIENT, guesser)])).allowed
        with pytest.raises(IntegrityError):
            await db.commit()
    assert await count_in(engine, STAFF_LOGIN_PER_CLIENT.bucket(guesser)) == 1


async def test_each_attempt_is_decided_by_its_own_count(engine: AsyncEngine) -> None:
    limit = a_limit(3)
    async with make_sessionmaker(engine)() as db:
        answers = [(await count(db, [(limit, "client")])).allowed for _ in range(5)]
    assert answers == [True, True, True, False, False]
    # Refused attempts are counted too: hammering keeps the limit closed.
    assert await count_in(engine, limit.bucket("client")) == 5


async def test_attempts_at_once_get_no_more_than_the_limit(engine: AsyncEngine) -> None:
    limit = a_limit(5)

    async def attempt() -> bool:
        async with make_sessionmaker(engine)() as db:
            return (await count(db, [(limit, "client")])).allowed

    answers = await asyncio.gather(*(attempt() for _ in range(40)))
    assert answers.count(True) == limit.attempts
    assert await count_in(engine, limit.bucket("client")) == 40


async def test_the_previous_windows_attempts_count_for_what_of_it_is_still_inside(
    engine: AsyncEngine,
) -> None:
    """A client cannot spend one allowance at the end of a window and another at the
    start of the next."""
    limit = a_limit(5)
    start = limit.window_start(datetime.now(UTC))
    async with make_sessionmaker(engine)() as db:
        late = start - limit.window / 10
        spent = [(await count(db, [(limit, "c")], now=late)).allowed for _ in range(5)]
        assert spent == [True] * 5
        # A fifth of the new window gone: four fifths of the five still count.
        early = start + limit.window / 5
        assert (await count(db, [(limit, "c")], now=early)).allowed  # 1 + 4
        refused = await count(db, [(limit, "c")], now=early)  # 2 + 4
        assert not refused.allowed
        assert refused.retry_after() == limit.window.total_seconds()
        # Near the window's end the previous one has all but gone.
        assert (await count(db, [(limit, "c")], now=start + limit.window * 0.95)).allowed


async def test_an_attempt_given_back_is_no_longer_counted(engine: AsyncEngine) -> None:
    limit = a_limit(1)
    async with make_sessionmaker(engine)() as db:
        first = await count(db, [(limit, "desk")])
        await uncount(db, first)
        assert (await count(db, [(limit, "desk")])).allowed
        assert not (await count(db, [(limit, "desk")])).allowed
    assert await count_in(engine, limit.bucket("desk")) == 2


async def test_old_windows_are_pruned_a_batch_at_a_time(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rate_limits, "PRUNE_BATCH", 4)
    bucket = uuid.uuid4().hex
    now = datetime.now(UTC)
    # Older than anything else in the table, so they are the batches' oldest.
    old = [now - timedelta(days=3650, minutes=minute) for minute in range(6)]
    async with engine.begin() as connection:
        await connection.execute(
            insert(RateLimitCount),
            [{"bucket": bucket, "window_start": at, "count": 1} for at in [*old, now]],
        )
    assert await rate_limits.prune(engine) == 4
    assert await count_in(engine, bucket) == 3
    assert await rate_limits.prune(engine) >= 2
    # The hour's attempts are what limits count: never pruned.
    assert await count_in(engine, bucket) == 1


async def test_counting_attempts_prunes_now_and_then(engine: AsyncEngine) -> None:
    bucket = uuid.uuid4().hex
    async with engine.begin() as connection:
        await connection.execute(
            insert(RateLimitCount),
            [{"bucket": bucket, "window_start": datetime.now(UTC) - timedelta(days=2), "count": 3}],
        )
    counted = f"10.4.{random.randrange(256)}.{random.randrange(1, 255)}"
    async with make_sessionmaker(engine)() as db:
        for _ in range(rate_limits.PRUNE_EVERY):
            await count(db, [(VERIFY_PER_CLIENT, counted)])
    assert await count_in(engine, bucket) == 0
    assert await count_in(engine, VERIFY_PER_CLIENT.bucket(counted)) == rate_limits.PRUNE_EVERY


async def test_counts_are_indexed_by_window(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        indexes = await connection.run_sync(
            lambda sync: inspect(sync).get_indexes("rate_limit_counts")
        )
    assert ["window_start"] in [index["column_names"] for index in indexes]
