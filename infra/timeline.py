"""A secure email's timeline (read receipts) in the database: what happened, and when.

Each line is added by whoever saw it happen: the workflow's activities (sent, the notice
emailed, passcodes, reminders, replies, expiry, withdrawal, bounces), the portal
("viewed") and SendGrid's Event Webhook ("notice_delivered"). A line has a key unique
within its secure email, so a retried activity or a webhook SendGrid delivers twice adds
it once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.secure_email import EventKind
from infra.db.models import SecureEmail, SecureEmailEvent, UTCDateTime


async def add(
    db: AsyncSession, secure_email_id: str, kind: EventKind, at: datetime, key: str
) -> None:
    """Adds the line unless one with ``key`` is there, or no such secure email is (a
    workflow started by hand for an id the database never had gets no line, and its
    activity is not retried for ever on the foreign key). Not committed: the caller's
    transaction holds it with what it records."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    line = select(
        SecureEmail.id,
        literal(kind.value),
        literal(at, UTCDateTime()),
        literal(key),
    ).where(SecureEmail.id == secure_email_id)
    await db.execute(
        insert(SecureEmailEvent)
        .from_select(["secure_email_id", "kind", "at", "key"], line)
        .on_conflict_do_nothing(index_elements=["secure_email_id", "key"])
    )


async def of(db: AsyncSession, secure_email_id: str) -> list[SecureEmailEvent]:
    """The timeline, oldest first (ties in the order they were added)."""
    events = await db.scalars(
        select(SecureEmailEvent)
        .where(SecureEmailEvent.secure_email_id == secure_email_id)
        .order_by(SecureEmailEvent.at, SecureEmailEvent.id)
    )
    return list(events)
