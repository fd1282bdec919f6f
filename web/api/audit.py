"""``/api/v1/audit``: the practice's audit log (R13), for office administrators."""

from __future__ import annotations

from fastapi import APIRouter

from domain.audit import AuditEventList, AuditEventPublic
from infra.audit import find_events
from web.api.responses import ADMINS_ONLY, INVALID
from web.deps import ApiAdmin, DbSession
from web.services.audit import Filter

router = APIRouter(prefix="/audit", tags=["audit"], responses=ADMINS_ONLY)


@router.get("", responses=INVALID)
async def list_audit_events(db: DbSession, admin: ApiAdmin, where: Filter) -> AuditEventList:
    events = await find_events(db, admin.practice_id, where)
    return AuditEventList(items=[AuditEventPublic.model_validate(e) for e in events])
