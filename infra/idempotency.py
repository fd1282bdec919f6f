"""Idempotency keys (R21): a practice's software sends ``Idempotency-Key`` with a ``POST``
it may retry, and a retry gets the first request's answer instead of doing it again.

A key is claimed by inserting its row; the unique ``(practice_id, key_hash)`` decides
between two first requests that arrive at once, on SQLite and PostgreSQL alike: the
one whose insert commits holds the key, the other's insert is refused
(``IntegrityError``) and it reads the holder's row instead. The holder records the
answer it gave (``record_answer``), or gives the key back (``release``) when it failed
in a way the client should retry.

Keys are per practice, kept ``KEEP`` (24 hours) from their first request. Expired keys
are purged on write: each claim first deletes its practice's expired keys, in the same
transaction as its insert, so a key reused after a day is claimed afresh and the table
holds at most a day of each practice's keys; ``find`` ignores an expired key not yet
purged. The key is stored as its SHA-256, never as sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db.engine import commit_or_refusal
from infra.db.models import IdempotencyKey

KEEP = timedelta(hours=24)


@dataclass(frozen=True)
class Answer:
    """What the first request answered: its status and JSON body."""

    status_code: int
    body: str


@dataclass(frozen=True)
class KeyUse:
    """A key as its row holds it: the request it was claimed for and, once that request
    has answered, its answer."""

    claim_id: str
    request_hash: str
    created_at: datetime
    answer: Answer | None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def purge(db: AsyncSession, practice_id: str, now: datetime) -> None:
    """Deletes ``practice_id``'s keys older than ``KEEP``; not committed."""
    await db.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.practice_id == practice_id,
            IdempotencyKey.created_at < now - KEEP,
        )
    )


async def claim(
    db: AsyncSession,
    practice_id: str,
    key: str,
    request_hash: str,
    *,
    now: datetime | None = None,
) -> str | None:
    """Claims ``key`` for a request of ``practice_id`` (its fingerprint ``request_hash``):
    the claim's id, or None when another request holds the key (``find`` reads it).
    Committed either way; the practice's expired keys are purged first."""
    now = now or datetime.now(UTC)
    await purge(db, practice_id, now)
    row = IdempotencyKey(
        practice_id=practice_id,
        key_hash=key_hash(key),
        request_hash=request_hash,
        created_at=now,
    )
    db.add(row)
    if await commit_or_refusal(db) is not None:
        return None
    return row.id


async def find(
    db: AsyncSession, practice_id: str, key: str, *, now: datetime | None = None
) -> KeyUse | None:
    """``key`` as ``practice_id`` used it in the last ``KEEP``, or None."""
    now = now or datetime.now(UTC)
    found = (
        await db.execute(
            select(
                IdempotencyKey.id,
                IdempotencyKey.request_hash,
                IdempotencyKey.created_at,
                IdempotencyKey.status_code,
                IdempotencyKey.response_body,
            ).where(
                IdempotencyKey.practice_id == practice_id,
                IdempotencyKey.key_hash == key_hash(key),
                IdempotencyKey.created_at >= now - KEEP,
            )
        )
    ).one_or_none()
    await db.commit()
    if found is None:
        return None
    claim_id, request_hash, created_at, status_code, body = found
    answer = Answer(status_code, body) if status_code is not None and body is not None else None
    return KeyUse(claim_id, request_hash, created_at, answer)


async def record_answer(db: AsyncSession, claim_id: str, answer: Answer) -> None:
    """The claim's request answered ``answer``: what a retry with the key gets. Committed."""
    await db.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claim_id)
        .values(
            status_code=answer.status_code,
            response_body=answer.body,
            answered_at=datetime.now(UTC),
        )
    )
    await db.commit()


async def release(db: AsyncSession, claim_id: str) -> None:
    """Gives the key back: its request failed and did nothing, so a retry runs again.
    Committed."""
    await db.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claim_id))
    await db.commit()
