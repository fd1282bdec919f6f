"""Which notice mails a secure email is due, and which activity mails each (R5, R15).

A notice is mailed only when the database says it is due, and by one activity only,
whatever Temporal replays or whoever starts a copy of a workflow:

- the first notice, while the secure email is still being sent;
- its one reminder, while nobody has opened it;
- a resend, only one the office asked for (``request_resend``, by the web app, before it
  asks the workflow), while nobody has opened it.

None for a secure email that is withdrawn, failed or expired. The activity claims the
notice in one statement, naming its run and activity id: a retry of the same activity
(after a crash mid-send) claims it again and may mail again, with the same Message-ID
(at least once within that activity); another run or another activity finds the claim
taken, or no request, and mails nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.secure_email import NoticeOccasion, SecureEmailStatus
from infra.db.engine import upsert_into
from infra.db.models import NoticeClaim, SecureEmail, UTCDateTime

FIRST = "first"
REMINDER = "reminder"
CLOSED = (
    SecureEmailStatus.WITHDRAWN.value,
    SecureEmailStatus.FAILED.value,
    SecureEmailStatus.EXPIRED.value,
)


def key_of(occasion: NoticeOccasion, request_id: str | None) -> str | None:
    """The claim's key; None for a resend nobody asked for."""
    if occasion == NoticeOccasion.FIRST:
        return FIRST
    if occasion == NoticeOccasion.REMINDER:
        return REMINDER
    return f"resend:{request_id}" if request_id else None


def _due(occasion: NoticeOccasion, now: datetime) -> ColumnElement[bool]:
    """The secure email's state in which this notice may go."""
    open_ = and_(
        SecureEmail.status.not_in(CLOSED),
        SecureEmail.expires_at > literal(now, UTCDateTime()),
    )
    if occasion == NoticeOccasion.FIRST:
        return and_(open_, SecureEmail.status == SecureEmailStatus.SENDING.value)
    return and_(open_, SecureEmail.opened_at.is_(None))


async def claim(
    db: AsyncSession,
    secure_email_id: str,
    occasion: NoticeOccasion,
    request_id: str | None,
    claimant: str,
    now: datetime,
) -> bool:
    """True if ``claimant`` may mail this notice now; committed either way."""
    key = key_of(occasion, request_id)
    if key is None:
        return False
    due = _due(occasion, now)
    if occasion == NoticeOccasion.RESEND:
        # The office's request is there, unclaimed or claimed by this same activity.
        claimed = await db.execute(
            update(NoticeClaim)
            .where(
                NoticeClaim.secure_email_id == secure_email_id,
                NoticeClaim.key == key,
                or_(NoticeClaim.claimed_by.is_(None), NoticeClaim.claimed_by == claimant),
                exists().where(SecureEmail.id == secure_email_id, due),
            )
            .values(claimed_by=claimant, claimed_at=now)
            .returning(NoticeClaim.id)
        )
    else:
        # Inserted if due and not claimed yet; a claim of this same activity is kept.
        row = select(
            SecureEmail.id,
            literal(key),
            literal(now, UTCDateTime()),
            literal(claimant),
            literal(now, UTCDateTime()),
        ).where(SecureEmail.id == secure_email_id, due)
        statement = upsert_into(NoticeClaim, db.get_bind().dialect.name).from_select(
            ["secure_email_id", "key", "requested_at", "claimed_by", "claimed_at"], row
        )
        claimed = await db.execute(
            statement.on_conflict_do_update(
                index_elements=["secure_email_id", "key"],
                set_={"claimed_at": statement.excluded.claimed_at},
                where=NoticeClaim.claimed_by == statement.excluded.claimed_by,
            ).returning(NoticeClaim.id)
        )
    won = claimed.first() is not None
    await db.commit()
    return won


def request_resend(db: AsyncSession, secure_email_id: str, staff_id: str, now: datetime) -> str:
    """The office asks for the notice again: the request the notice activity will claim.
    Not committed: the caller commits it before asking the workflow. Its id."""
    request_id = str(uuid.uuid4())
    db.add(
        NoticeClaim(
            secure_email_id=secure_email_id,
            key=f"resend:{request_id}",
            requested_by=staff_id,
            requested_at=now,
        )
    )
    return request_id


async def drop_unclaimed_resend(db: AsyncSession, secure_email_id: str, request_id: str) -> None:
    """A resend the workflow refused: its request can no longer be claimed."""
    await db.execute(
        delete(NoticeClaim).where(
            NoticeClaim.secure_email_id == secure_email_id,
            NoticeClaim.key == f"resend:{request_id}",
            NoticeClaim.claimed_by.is_(None),
        )
    )
    await db.commit()


async def went_before(db: AsyncSession, secure_email_id: str, claimant: str, now: datetime) -> bool:
    """The first notice, claimed by this same activity in an earlier attempt, has reached
    the patient: the secure email is open and has left "sending", which only the link
    in that notice can do (a worker that died after the mail went, before its answer
    was recorded). Another run's claim never counts."""
    key = key_of(NoticeOccasion.FIRST, None)
    found = await db.scalar(
        select(NoticeClaim.id).where(
            NoticeClaim.secure_email_id == secure_email_id,
            NoticeClaim.key == key,
            NoticeClaim.claimed_by == claimant,
            exists().where(
                SecureEmail.id == secure_email_id,
                SecureEmail.status.not_in(CLOSED),
                SecureEmail.status != SecureEmailStatus.SENDING.value,
                SecureEmail.expires_at > literal(now, UTCDateTime()),
            ),
        )
    )
    return found is not None
