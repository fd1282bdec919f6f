"""The office's withdrawals and expiry changes, confirmed against what the web app
recorded before it asked the workflow (``infra.office_requests``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.claims import this_activity
from domain.secure_email import OfficeRequestToConfirm
from infra import office_requests
from infra.db.engine import finishes_when_cancelled


class OfficeRequestActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    @finishes_when_cancelled  # run as a local activity: infra.db.engine says why
    async def confirm_office_request(self, request: OfficeRequestToConfirm) -> bool:
        """True if the office asked for this very change and no other update used its
        request: it is then this update's, and no other's."""
        async with self._sessions() as db:
            return await office_requests.claim(db, request, this_activity(), datetime.now(UTC))
