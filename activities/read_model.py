"""Projecting a workflow's lifecycle into the database, where office pages read it."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.secure_email import StatusChange
from infra.db.models import SecureEmail


class ReadModelActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def record_status(self, change: StatusChange) -> None:
        # Only a newer change wins, so a retried or late activity cannot move a secure
        # email back (say from "opened" to "sent").
        async with self._sessions() as db:
            await db.execute(
                update(SecureEmail)
                .where(
                    SecureEmail.id == change.secure_email_id,
                    SecureEmail.status_sequence < change.sequence,
                )
                .values(
                    status=change.status.value,
                    status_sequence=change.sequence,
                    opened_at=change.opened_at,
                )
            )
            await db.commit()
