"""The Open Dental sync's activities: where the last sync stopped, one page of patients
fetched and written at a time (their data never enters the workflow's history: only
counts and PatNums do), families linked, the sync recorded.

Open Dental busy or failing (429, 5xx, no answer) raises a retryable error, so the
activity's retry policy backs off; keys refused (401/403) tell the office once, pause
the practice's schedule and raise a non-retryable error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.audit import AuditAction
from domain.open_dental import (
    KEYS_REFUSED_ERROR,
    REQUEST_REFUSED_ERROR,
    FamiliesToLink,
    OpenDentalSync,
    PageSynced,
    PageToSync,
    SyncFinished,
    SyncStart,
)
from infra import open_dental
from infra.audit import SYSTEM, audit
from infra.open_dental_client import KeysRefused, OpenDentalClient, RequestRefused
from infra.open_dental_patients import link_families, sync_patients
from infra.open_dental_schedule import pause_schedule

log = logging.getLogger(__name__)

ClientFor = Callable[[Any], OpenDentalClient]


async def keys_refused(sessions: async_sessionmaker[AsyncSession], practice_id: str) -> None:
    """Open Dental refused the practice's keys (to a sync, or to a file or commlog sent):
    once until they are saved again, the office is told and the schedule paused."""
    async with sessions() as db:
        first = await open_dental.mark_keys_refused(db, practice_id)
        if first:
            audit(
                db,
                practice_id,
                AuditAction.SETTINGS_CHANGE,
                SYSTEM,
                detail="Open Dental refused the keys: syncing paused",
            )
            await db.commit()
    if first:
        log.warning("Open Dental refused the keys of practice %s", practice_id)
    await pause_schedule(activity.client(), practice_id)


class OpenDentalActivities:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], client_for: ClientFor | None = None
    ) -> None:
        self._sessions = sessions
        # Tests may hand in a client of their own; the integration's own otherwise.
        self._client_for: ClientFor = client_for or open_dental.client_of

    @activity.defn(name="begin_open_dental_sync")
    async def begin_sync(self, sync: OpenDentalSync) -> SyncStart:
        async with self._sessions() as db:
            integration = await open_dental.integration_of(db, sync.practice_id)
        if integration is None or integration.keys_refused_at is not None:
            return SyncStart(ready=False)
        return SyncStart(ready=True, date_t_stamp=integration.server_date_time)

    @activity.defn(name="sync_open_dental_page")
    async def sync_page(self, page: PageToSync) -> PageSynced:
        async with self._sessions() as db:
            integration = await open_dental.integration_of(db, page.practice_id)
            if integration is None:
                return PageSynced()
            client = self._client_for(integration)
            clinics = await open_dental.clinics_by_number(db, page.practice_id)
        try:
            found = await client.patients_changed(page.date_t_stamp, page.offset)
        except KeysRefused:
            await keys_refused(self._sessions, page.practice_id)
            raise ApplicationError(
                "Open Dental refused the keys", type=KEYS_REFUSED_ERROR, non_retryable=True
            ) from None
        except RequestRefused as error:
            raise ApplicationError(
                str(error), type=REQUEST_REFUSED_ERROR, non_retryable=True
            ) from None
        async with self._sessions() as db:
            synced = await sync_patients(db, page.practice_id, found.patients, clinics)
        synced.server_date_time = found.server_date_time
        return synced

    @activity.defn(name="link_open_dental_families")
    async def link_families(self, links: FamiliesToLink) -> int:
        async with self._sessions() as db:
            return await link_families(db, links.practice_id, links.unlinked)

    @activity.defn(name="finish_open_dental_sync")
    async def finish_sync(self, finished: SyncFinished) -> None:
        async with self._sessions() as db:
            await open_dental.record_sync(
                db, finished.practice_id, finished.server_date_time, finished.summary
            )

    def all(self) -> list[Callable[..., Awaitable[Any]]]:
        return [self.begin_sync, self.sync_page, self.link_families, self.finish_sync]
