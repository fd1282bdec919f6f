"""Idempotency keys in the database: one claim per practice and key, however many
requests race for it; kept hashed, answers encrypted, a day at most, per practice."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from infra import idempotency
from infra.accounts import create_practice
from infra.db.engine import make_sessionmaker
from infra.db.models import IdempotencyKey
from infra.idempotency import Answer

KEY = "9f0c2b1e-retry-me"
REQUEST = hashlib.sha256(b"a request").hexdigest()
CREATED = Answer(201, json.dumps({"id": "4b3c", "status": "sending"}))


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


async def a_practice(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as db:
        practice = await create_practice(db, "Smile Dental")
        await db.commit()
        return practice.id


async def claim(
    sessions: async_sessionmaker[AsyncSession],
    practice_id: str,
    key: str = KEY,
    request_hash: str = REQUEST,
    now: datetime | None = None,
) -> str | None:
    async with sessions() as db:
        return await idempotency.claim(db, practice_id, key, request_hash, now=now)


async def find(
    sessions: async_sessionmaker[AsyncSession], practice_id: str, key: str = KEY
) -> idempotency.KeyUse | None:
    async with sessions() as db:
        return await idempotency.find(db, practice_id, key)


async def rows_of(sessions: async_sessionmaker[AsyncSession], practice_id: str) -> int:
    async with sessions() as db:
        count = await db.scalar(
            select(func.count())
            .select_from(IdempotencyKey)
            .where(IdempotencyKey.practice_id == practice_id)
        )
    return int(count or 0)


async def test_a_key_is_claimed_once_then_answers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    practice_id = await a_practice(sessions)
    claim_id = await claim(sessions, practice_id)
    assert claim_id is not None
    assert await claim(sessions, practice_id) is None
    # Another request under the key is refused too: the key is taken, whatever it asks.
    assert await claim(sessions, practice_id, request_hash="0" * 64) is None
    running = await find(sessions, practice_id)
    assert running is not None
    assert (running.claim_id, running.request_hash, running.answer) == (claim_id, REQUEST, None)

    async with sessions() as db:
        await idempotency.record_answer(db, claim_id, CREATED)
    answered = await find(sessions, practice_id)
    assert answered is not None and answered.answer == CREATED
    assert await claim(sessions, practice_id) is None


async def test_a_released_key_is_claimed_again(sessions: async_sessionmaker[AsyncSession]) -> None:
    practice_id = await a_practice(sessions)
    claim_id = await claim(sessions, practice_id)
    assert claim_id is not None
    async with sessions() as db:
        await idempotency.release(db, claim_id)
    assert await find(sessions, practice_id) is None
    again = await claim(sessions, practice_id)
    assert again is not None and again != claim_id


async def test_requests_racing_for_a_key_get_one_claim(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    practice_id = await a_practice(sessions)
    claims = await asyncio.gather(*(claim(sessions, practice_id) for _ in range(6)))
    won = [claim_id for claim_id in claims if claim_id is not None]
    assert len(won) == 1
    assert await rows_of(sessions, practice_id) == 1
    used = await find(sessions, practice_id)
    assert used is not None and used.claim_id == won[0]


async def test_keys_are_per_practice(sessions: async_sessionmaker[AsyncSession]) -> None:
    ours, theirs = await a_practice(sessions), await a_practice(sessions)
    assert await claim(sessions, ours) is not None
    assert await find(sessions, theirs) is None
    assert await claim(sessions, theirs, request_hash="1" * 64) is not None
    mine, other = await find(sessions, ours), await find(sessions, theirs)
    assert mine is not None and other is not None
    assert (mine.request_hash, other.request_hash) == (REQUEST, "1" * 64)


async def test_a_key_older_than_a_day_is_gone_and_purged_on_the_practice_s_next_claim(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ours, theirs = await a_practice(sessions), await a_practice(sessions)
    day_ago = datetime.now(UTC) - idempotency.KEEP - timedelta(seconds=1)
    old = await claim(sessions, ours, now=day_ago)
    assert old is not None
    assert await claim(sessions, ours, key="older", now=day_ago) is not None
    assert await claim(sessions, theirs, now=day_ago) is not None
    # Expired: not found, though still stored until the practice writes again.
    assert await find(sessions, ours) is None
    assert await rows_of(sessions, ours) == 2
    # The same key claimed afresh, after the practice's expired keys were purged.
    fresh = await claim(sessions, ours)
    assert fresh is not None and fresh != old
    assert await rows_of(sessions, ours) == 1
    # Another practice's keys wait for its own next claim.
    assert await rows_of(sessions, theirs) == 1
    assert await claim(sessions, theirs, key="another") is not None
    assert await rows_of(sessions, theirs) == 1


async def test_the_key_is_stored_hashed_and_the_answer_encrypted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    practice_id = await a_practice(sessions)
    claim_id = await claim(sessions, practice_id)
    assert claim_id is not None
    async with sessions() as db:
        await idempotency.record_answer(db, claim_id, CREATED)
        stored = (
            await db.execute(
                text(
                    "SELECT key_hash, request_hash, status_code, response_body "
                    "FROM idempotency_keys WHERE id = :id"
                ),
                {"id": claim_id},
            )
        ).one()
    assert stored.key_hash == hashlib.sha256(KEY.encode()).hexdigest()
    assert stored.status_code == 201
    assert stored.response_body.startswith("v2:")
    assert "4b3c" not in stored.response_body
    assert KEY not in " ".join(str(value) for value in stored)
