"""``/api/v1/audit``: the practice's audit log (R13), for office administrators; each
event with the clinic it is about (R19), resolved from its message or patient."""

from __future__ import annotations

from fastapi import APIRouter

from domain.audit import AuditEventList, AuditEventPublic
from infra.audit import find_events
from infra.audit_names import clinics_in
from web.api.responses import ADMINS_ONLY, INVALID
from web.deps import ApiAdmin, DbSession
from web.services.audit import Filter

router = APIRouter(prefix="/audit", tags=["audit"], responses=ADMINS_ONLY)


@router.get("", responses=INVALID)
async def list_audit_events(db: DbSession, admin: ApiAdmin, where: Filter) -> AuditEventList:
    events = await find_events(db, admin.practice_id, where)
    clinics = await clinics_in(db, admin.practice_id, events)
    return AuditEventList(
        items=[
            AuditEventPublic.model_validate(event).model_copy(
                update={"clinic_id": clinics.clinic_of(event)}
            )
            for event in events
        ]
    )
