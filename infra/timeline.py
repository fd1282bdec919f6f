"""A secure email's timeline (read receipts) in the database: what happened, and when.

Each line is added by whoever saw it happen: the workflow's activities (sent, passcodes,
reminders, replies, expiry, withdrawal, bounces), the portal ("viewed") and SendGrid's
Event Webhook ("notice_delivered"). A line has a key unique within its secure email, so
a retried activity or a webhook SendGrid delivers twice adds it once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.secure_email import EventKind
from infra.db.models import SecureEmailEvent


async def add(
    db: AsyncSession, secure_email_id: str, kind: EventKind, at: datetime, key: str
) -> None:
    """Adds the line unless one with ``key`` is there. Not committed: the caller's
    transaction holds it with what it records."""
    values = {"secure_email_id": secure_email_id, "kind": kind.value, "at": at, "key": key}
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    await db.execute(
        insert(SecureEmailEvent)
        .values(**values)
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
