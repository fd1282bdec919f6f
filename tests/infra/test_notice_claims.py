"""The first notice's claim after a worker died between the mail and its answer: the same
activity's retry learns the notice went (the patient used it) and mails nothing again;
any other run, a copied history's included, is still refused."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from domain.secure_email import NoticeOccasion, SecureEmailStatus
from infra import notice_claims
from infra.db.engine import make_sessionmaker
from tests.fixtures.rows import a_secure_email

CLAIMANT = "run-1/1"


async def test_a_retry_of_the_same_activity_learns_the_notice_went(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)
    now = datetime.now(UTC)
    async with sessions() as db:
        secure_email = await a_secure_email(db, status=SecureEmailStatus.SENDING.value)
        await db.commit()
        first = NoticeOccasion.FIRST
        assert await notice_claims.claim(db, secure_email.id, first, None, CLAIMANT, now)
        # Still sending: the notice may not have gone, so the retry mails it.
        assert not await notice_claims.went_before(db, secure_email.id, CLAIMANT, now)
        # The patient opened it with the link that notice carried.
        secure_email.status = SecureEmailStatus.OPENED.value
        await db.commit()
        assert not await notice_claims.claim(db, secure_email.id, first, None, CLAIMANT, now)
        assert await notice_claims.went_before(db, secure_email.id, CLAIMANT, now)
        # Another run (a start copied from a history) never counts as the claimant.
        assert not await notice_claims.went_before(db, secure_email.id, "run-2/1", now)
        # Withdrawn since: nothing is due, and nothing counts as gone to answer for.
        secure_email.status = SecureEmailStatus.WITHDRAWN.value
        await db.commit()
        assert not await notice_claims.went_before(db, secure_email.id, CLAIMANT, now)
