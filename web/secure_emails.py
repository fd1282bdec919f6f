"""Reading secure emails for the office, and what Send Secure needs from the app state."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db.models import Attachment, SecureEmail, StaffUser
from web.deps import staff_actor
from web.sending import UNAVAILABLE, Sender, SendRefused
from web.state import AppState


async def sender_for(
    state: AppState, db: AsyncSession, staff: StaffUser, request: Request
) -> Sender:
    try:
        temporal = await state.temporal()
    except RuntimeError as error:  # the SDK's "failed client connect"
        raise SendRefused({"form": UNAVAILABLE}, 503) from error
    return Sender(
        db=db,
        staff=staff,
        store=state.store,
        temporal=temporal,
        task_queue=state.settings.task_queue,
        actor=staff_actor(request, staff),
        portal_keys=state.portal_keys,
    )


async def load_secure_email(
    db: AsyncSession, staff: StaffUser, secure_email_id: str
) -> SecureEmail | None:
    secure_email = await db.get(SecureEmail, secure_email_id)
    if secure_email is None or secure_email.practice_id != staff.practice_id:
        return None
    return secure_email


async def attachments_of(db: AsyncSession, secure_email_id: str) -> list[Attachment]:
    statement = (
        select(Attachment)
        .where(Attachment.secure_email_id == secure_email_id)
        .order_by(Attachment.created_at, Attachment.id)
    )
    return list((await db.scalars(statement)).all())


async def office_files_of(db: AsyncSession, secure_email_id: str) -> list[Attachment]:
    """The files the office sent; the patient's reply files share the table."""
    return [a for a in await attachments_of(db, secure_email_id) if a.reply_id is None]
