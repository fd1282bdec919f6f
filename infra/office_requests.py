"""The withdrawals and expiry changes the office asked for (R13, R15).

The web app records the request (``record``) and commits it before it sends the update
that carries its id; the workflow claims it (``claim``) in one statement before it
changes anything. A claim holds only for the secure email the workflow runs, the kind of
change, the staff user and (for an expiry) the time the update names, and only once:
an update sent by hand, or copied from a history with its request id, finds no such
request, or one already claimed, and changes nothing. The claimant names the workflow
run and its local activity, so a retry of that same confirmation (a worker that crashed
before the answer was recorded) claims it again.

A sibling of ``infra.notice_claims`` rather than part of it: those rows are notice mails
(most of them written by the mail activity itself, none by an update), claimed while
the database holds the notice due; these are the office's own changes, each with what
it asked for.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.secure_email import OfficeChange, OfficeRequestToConfirm
from infra.db.models import OfficeRequest


def record(
    db: AsyncSession,
    secure_email_id: str,
    kind: OfficeChange,
    staff_id: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> str:
    """The office asks for a change: the request its workflow will claim. Not committed:
    the caller commits it before asking the workflow. Its id."""
    request_id = str(uuid.uuid4())
    db.add(
        OfficeRequest(
            id=request_id,
            secure_email_id=secure_email_id,
            kind=kind.value,
            staff_id=staff_id,
            expires_at=expires_at,
            requested_at=now,
        )
    )
    return request_id


async def claim(
    db: AsyncSession, request: OfficeRequestToConfirm, claimant: str, now: datetime
) -> bool:
    """True if the database holds this very request, unclaimed or claimed by
    ``claimant``; it is then claimed by it. Committed either way."""
    claimed = await db.execute(
        update(OfficeRequest)
        .where(
            OfficeRequest.id == request.request_id,
            OfficeRequest.secure_email_id == request.secure_email_id,
            OfficeRequest.kind == request.kind.value,
            OfficeRequest.staff_id == request.staff_id,
            OfficeRequest.expires_at.is_(None)
            if request.expires_at is None
            else OfficeRequest.expires_at == request.expires_at,
            or_(OfficeRequest.claimed_by.is_(None), OfficeRequest.claimed_by == claimant),
        )
        .values(claimed_by=claimant, claimed_at=now)
        .returning(OfficeRequest.id)
    )
    won = claimed.first() is not None
    await db.commit()
    return won


async def drop_unclaimed(db: AsyncSession, request_id: str) -> None:
    """Once the workflow has answered (or not in time): a request it did not claim can
    no longer be."""
    await db.execute(
        delete(OfficeRequest).where(
            OfficeRequest.id == request_id, OfficeRequest.claimed_by.is_(None)
        )
    )
    await db.commit()
