"""``/api/v1/integrations/open-dental``: the practice's Open Dental connector, for
office administrators. The keys are write-only: ``GET`` shows their last four
characters, and a ``PUT`` that leaves one out keeps it."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from pydantic import BaseModel

from domain.errors import FieldRefused
from domain.open_dental import OpenDentalChange, OpenDentalPublic
from infra import open_dental
from infra.db.models import OpenDentalIntegration
from web.api.responses import (
    ADMINS_ONLY,
    JSON_BODY,
    NOT_FOUND,
    SERVICE_DOWN,
    business_rules,
    conflict,
    declared,
)
from web.deps import ApiAdmin, DbSession, StateDep, or_404, staff_actor
from web.errors import field_error
from web.services import open_dental as connector

router = APIRouter(prefix="/integrations/open-dental", tags=["integrations"])

READ = declared(ADMINS_ONLY, NOT_FOUND)
RULES = business_rules(
    base_url="https (http only to this machine, in development)",
    developer_key="required to connect",
    customer_key="required to connect",
    clinic_numbers="keyed by clinics of the practice, each its own ClinicNum",
)
CHANGE = declared(ADMINS_ONLY, JSON_BODY, SERVICE_DOWN, RULES)
SYNC = declared(
    ADMINS_ONLY,
    NOT_FOUND,
    conflict("Open Dental refused the keys: the sync is paused until they change"),
    SERVICE_DOWN,
)


class ConnectionTest(BaseModel):
    connected: bool
    message: str


class SyncStarted(BaseModel):
    detail: str


async def _integration(db: DbSession, admin: ApiAdmin) -> OpenDentalIntegration:
    return or_404(await open_dental.integration_of(db, admin.practice_id), connector.NOT_CONNECTED)


@router.get("", responses=READ)
async def read_open_dental(db: DbSession, admin: ApiAdmin) -> OpenDentalPublic:
    return await open_dental.shown(db, await _integration(db, admin))


@router.put("", responses=CHANGE)
async def change_open_dental(
    request: Request, state: StateDep, db: DbSession, admin: ApiAdmin, change: OpenDentalChange
) -> OpenDentalPublic:
    """Connects Open Dental, or changes the connection; a key left out keeps its value.
    Saving sets the sync's schedule (every ``sync_minutes``) and resumes it if Open
    Dental had refused the keys."""
    try:
        integration = await connector.save(
            state, db, admin.practice_id, change, staff_actor(request, admin)
        )
    except FieldRefused as refused:
        raise field_error(refused.field, refused.message) from refused
    return await open_dental.shown(db, integration)


@router.post("/test", responses=READ)
async def test_open_dental(db: DbSession, admin: ApiAdmin) -> ConnectionTest:
    """Asks Open Dental for one patient with the stored keys: connected, the keys
    refused, or Open Dental not reachable, in words."""
    check = await connector.check_connection(await _integration(db, admin))
    return ConnectionTest(connected=check.ok, message=check.message)


@router.post("/sync", status_code=status.HTTP_202_ACCEPTED, responses=SYNC)
async def sync_open_dental(state: StateDep, db: DbSession, admin: ApiAdmin) -> SyncStarted:
    """Starts a sync of patients from Open Dental now (one already running is that one)."""
    integration = await _integration(db, admin)
    if integration.keys_refused_at is not None:
        raise field_error("customer_key", connector.PAUSED, status.HTTP_409_CONFLICT)
    await connector.start_sync(state, integration)
    return SyncStarted(detail=connector.SYNC_STARTED)
